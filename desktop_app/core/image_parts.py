"""The recipe's parts for pictures that do not start from noise alone.

``Source`` is a picture to start from (image to image) with, optionally, where to repaint it
(``mask``, with its ``Inpainting`` options) and how far to extend it (``Outpaint``). ``HiresFix``
is a second pass: the first picture upscaled, then image to image over the end of the schedule,
on the same model or another one (an SDXL refiner is such a second model). ``Variation`` is
AUTOMATIC1111's variation seed: the starting noise slerped towards a second seed's noise, and the
noise drawn at another size so a seed keeps its composition ("Seed resize from").

Each part validates itself like the others in ``recipe.py``; what depends on two parts (the steps
a strength leaves, the size a hires pass reaches) is checked by ``Recipe.validate``. The second
name in each choice table is AUTOMATIC1111's, written into and read from its ``parameters`` text.
"""

from __future__ import annotations

from dataclasses import dataclass

from desktop_app.core.problems import (
    MAX_SEED,
    Problem,
    check_choice,
    check_range,
    check_whole,
    is_number,
    show,
)

FIT_MODES = {"resize": "Just resize", "crop": "Crop and resize", "fill": "Resize and fill"}
MASKED_CONTENT = {"original": "original", "noise": "latent noise", "fill": "fill"}
INPAINT_AREAS = {"whole": "Whole picture", "masked": "Only masked"}
UPSCALERS = {"latent": "Latent", "lanczos": "Lanczos"}
MAX_MASK_BLUR = 64
MAX_PADDING = 256
MAX_OUTPAINT = 2048
MIN_HIRES_SCALE, MAX_HIRES_SCALE = 1.0, 4.0
MAX_HIRES_STEPS = 1000


def steps_left(steps: int, strength: float) -> int:
    """The steps an image-to-image pass runs of a ``steps``-step schedule at ``strength``: the
    last ``int(steps · strength)`` (as diffusers' and AUTOMATIC1111's img2img count them)."""
    return min(int(steps * strength), steps)


@dataclass(frozen=True)
class Inpainting:
    """How the masked area is repainted."""

    blur: int = 4  # pixels of Gaussian blur on the mask's edge (the paste-back blends across it)
    content: str = "original"  # what the masked area starts from: the picture, noise, or its surroundings' colours
    area: str = "whole"  # "masked": crop around the mask, repaint it at the full output size, paste it back
    padding: int = 32  # pixels kept around the mask's box when the area is "masked"

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        check_whole(found, "source.inpaint.blur", self.blur, 0, MAX_MASK_BLUR, "the mask blur")
        check_choice(found, "source.inpaint.content", self.content, MASKED_CONTENT, "the masked content")
        check_choice(found, "source.inpaint.area", self.area, INPAINT_AREAS, "the inpaint area")
        check_whole(found, "source.inpaint.padding", self.padding, 0, MAX_PADDING, "the masked area's padding")
        return found


@dataclass(frozen=True)
class Outpaint:
    """Pixels added on each side of the source picture; the new area is filled and inpainted."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    @property
    def any(self) -> bool:
        return any(side > 0 for side in (self.left, self.top, self.right, self.bottom) if isinstance(side, int))

    def extended(self, width: int, height: int) -> tuple[int, int]:
        return width + self.left + self.right, height + self.top + self.bottom

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        for side in ("left", "top", "right", "bottom"):
            check_whole(found, "source.outpaint", getattr(self, side), 0, MAX_OUTPAINT, f"the {side} margin")
        return found


@dataclass(frozen=True)
class Source:
    """A picture to start from (image to image), and where to change it (inpainting, outpainting)."""

    image: str  # path of the init image; the gallery keeps a copy and the saved recipe points at it
    mask: str = ""  # path of the mask (white: repaint); "" with no outpaint margins is plain image to image
    strength: float = 1.0  # 1: noise to the very start of the schedule; smaller keeps more of the picture
    fit: str = "resize"  # how a picture of another size meets the output size
    inpaint: Inpainting = Inpainting()
    outpaint: Outpaint = Outpaint()

    @property
    def masked(self) -> bool:
        """True when part of the picture is repainted (a mask, or margins to fill)."""
        return bool(self.mask) or self.outpaint.any

    def steps_run(self, steps: int) -> int:
        return steps_left(steps, self.strength)

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        if not isinstance(self.image, str) or not self.image:
            found.append(Problem("source.image", "image to image needs an image to start from"))
        if not isinstance(self.mask, str):
            found.append(Problem("source.mask", "the mask must be the path of an image"))
        if not is_number(self.strength) or not 0.0 < self.strength <= 1.0:
            found.append(Problem("source.strength", f"the strength must be above 0 and at most 1, not {show(self.strength)}"))
        check_choice(found, "source.fit", self.fit, FIT_MODES, "the resize mode")
        found += self.inpaint.problems()
        found += self.outpaint.problems()
        return found


@dataclass(frozen=True)
class HiresFix:
    """A second pass: upscale the first picture, then run image to image over it."""

    scale: float = 2.0
    steps: int = 0  # the second pass's schedule length; 0: the first pass's
    strength: float = 0.7  # A1111's "Denoising strength" of the second pass
    upscaler: str = "latent"  # "latent": resize the latents; "lanczos": decode, resize the pixels, encode
    model_id: str = ""  # the second pass's model (e.g. an SDXL refiner); "": the first pass's

    def size_for(self, width: int, height: int, factor: int) -> tuple[int, int]:
        """The second pass's size: the first's times the scale, down to a multiple of the latent factor."""
        return (int(width * self.scale) // factor * factor, int(height * self.scale) // factor * factor)

    def schedule_steps(self, first_steps: int) -> int:
        return self.steps or first_steps

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        check_range(found, "hires.scale", self.scale, MIN_HIRES_SCALE, MAX_HIRES_SCALE, "the hires upscale")
        check_whole(found, "hires.steps", self.steps, 0, MAX_HIRES_STEPS, "the hires steps (0: as many as the first pass)")
        if not is_number(self.strength) or not 0.0 < self.strength <= 1.0:
            found.append(Problem("hires.strength", f"the hires strength must be above 0 and at most 1, not {show(self.strength)}"))
        check_choice(found, "hires.upscaler", self.upscaler, UPSCALERS, "the hires upscaler")
        if not isinstance(self.model_id, str):
            found.append(Problem("hires.model_id", "the second pass's model must be a model id"))
        return found


@dataclass(frozen=True)
class Variation:
    """AUTOMATIC1111's variation seed and "Seed resize from"."""

    seed: int = 0  # image k's second noise comes from seed + k
    strength: float = 0.0  # 0: the seed's own noise; 1: the variation seed's
    resize_from_width: int = 0  # 0: off; else the noise is drawn at this size and centred in the output
    resize_from_height: int = 0

    @property
    def resizes(self) -> bool:
        return self.resize_from_width > 0 and self.resize_from_height > 0

    def problems(self, latent_factor: int | None = None) -> list[Problem]:
        found: list[Problem] = []
        check_whole(found, "variation.seed", self.seed, 0, MAX_SEED, "the variation seed")
        check_range(found, "variation.strength", self.strength, 0.0, 1.0, "the variation strength")
        for name in ("resize_from_width", "resize_from_height"):
            value = getattr(self, name)
            check_whole(found, f"variation.{name}", value, 0, 16384, "the size the seed is resized from")
            if latent_factor and isinstance(value, int) and value % latent_factor:
                found.append(Problem(f"variation.{name}", f"the size the seed is resized from must be a multiple of "
                                                          f"{latent_factor}, not {value}"))
        sides = (self.resize_from_width, self.resize_from_height)
        if all(isinstance(v, int) for v in sides) and (sides[0] > 0) != (sides[1] > 0):
            found.append(Problem("variation.resize_from_width", "give both sides of the size the seed is resized from, or neither"))
        return found
