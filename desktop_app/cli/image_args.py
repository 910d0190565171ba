"""``generate``'s arguments for pictures that do not start from noise alone, as recipe parts.

``--init-image`` (image to image), ``--mask`` (inpainting), ``--outpaint``, the hires fix and the
variation seed. Files are checked before the engine starts: a missing or unreadable one is one
line naming the file. Without ``--width``/``--height``, image to image works at the init picture's
size (with the outpaint margins), rounded down to the model's latent factor.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from desktop_app.core.image_parts import FIT_MODES, INPAINT_AREAS, MASKED_CONTENT, UPSCALERS
from desktop_app.core.models import ModelInfo
from desktop_app.core.recipe import HiresFix, Inpainting, Outpaint, Recipe, Source, Variation

DEFAULT_STRENGTH = 0.75  # AUTOMATIC1111's default denoising strength


def margins(text: str) -> Outpaint:
    try:
        left, top, right, bottom = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give four whole numbers LEFT,TOP,RIGHT,BOTTOM, e.g. 64,0,64,0") from None
    return Outpaint(left, top, right, bottom)


def size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give WIDTHxHEIGHT, e.g. 512x512") from None
    return width, height


def add_image_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("image to image and inpainting")
    g.add_argument("--init-image", type=Path, default=None, help="start from this picture instead of noise")
    g.add_argument("--strength", type=float, default=None,
                   help=f"how much of the picture is redrawn: 1 all of it … near 0 almost nothing (default {DEFAULT_STRENGTH})")
    g.add_argument("--fit", choices=list(FIT_MODES), default="resize", help="a picture of another size is resized, cropped or padded")
    g.add_argument("--mask", type=Path, default=None, help="repaint only where this picture is white (inpainting)")
    g.add_argument("--mask-blur", type=int, default=4, help="pixels of blur on the mask's edge")
    g.add_argument("--inpaint-area", choices=list(INPAINT_AREAS), default="whole",
                   help="masked: repaint the box around the mask at the full size, then paste it back")
    g.add_argument("--padding", type=int, default=32, help="with --inpaint-area masked: pixels kept around the mask")
    g.add_argument("--masked-content", choices=list(MASKED_CONTENT), default=None,
                   help="what the masked area starts from (default: original; fill when outpainting)")
    g.add_argument("--outpaint", type=margins, default=None, metavar="L,T,R,B",
                   help="extend the picture by these pixels on each side and paint the new area")
    g = p.add_argument_group("second pass (hires fix) and variations")
    g.add_argument("--hires-scale", type=float, default=None, help="upscale the picture by this factor and redraw it")
    g.add_argument("--hires-steps", type=int, default=0, help="the second pass's schedule (default: --steps)")
    g.add_argument("--hires-strength", type=float, default=0.7, help="how much the second pass redraws")
    g.add_argument("--hires-upscaler", choices=list(UPSCALERS), default="latent")
    g.add_argument("--hires-model", default="", help="the second pass's model, e.g. an SDXL refiner (default: --model)")
    g.add_argument("--variation-seed", type=int, default=None, help="a second seed to vary the picture towards")
    g.add_argument("--variation-strength", type=float, default=None, help="0 the seed's picture … 1 the variation seed's (default 0.5 with --variation-seed)")
    g.add_argument("--seed-resize-from", type=size, default=None, metavar="WxH",
                   help="draw the seed's noise at this size, so the seed keeps its composition at another size")


def file_problems(args: argparse.Namespace) -> list[str]:
    """One line per bad file or combination, each naming the argument and the file."""
    from PIL import Image, UnidentifiedImageError

    found = []
    if args.mask is not None and args.init_image is None:
        found.append(f"--mask {args.mask}: a mask needs --init-image, the picture to inpaint")
    for flag, path in (("--init-image", args.init_image), ("--mask", args.mask)):
        if path is None:
            continue
        if not path.exists():
            found.append(f"{flag} {path}: no such file")
        elif not path.is_file():
            found.append(f"{flag} {path}: is a folder, not an image file")
        else:
            try:
                with Image.open(path) as picture:
                    picture.verify()
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                found.append(f"{flag} {path}: not an image this app can read (PNG, JPEG or WebP): {exc}")
    if args.init_image is None and (args.strength is not None or args.outpaint is not None):
        found.append("--strength and --outpaint need --init-image, the picture to start from")
    return found


def with_image_parts(recipe: Recipe, args: argparse.Namespace, info: ModelInfo) -> Recipe:
    """``recipe`` with the source, hires and variation parts the arguments ask for."""
    changes: dict = {}
    if args.init_image is not None:
        outpaint = args.outpaint or Outpaint()
        content = args.masked_content or ("fill" if outpaint.any else "original")
        inpaint = Inpainting(blur=args.mask_blur, content=content, area=args.inpaint_area, padding=args.padding)
        changes["source"] = Source(str(args.init_image.resolve()), str(args.mask.resolve()) if args.mask else "",
                                   args.strength if args.strength is not None else DEFAULT_STRENGTH, fit=args.fit,
                                   inpaint=inpaint, outpaint=outpaint)
        if args.width is None and args.height is None and args.inpaint_area == "whole":
            changes.update(zip(("width", "height"), picture_size(args.init_image, outpaint, info), strict=True))
    if args.hires_scale is not None:
        changes["hires"] = HiresFix(args.hires_scale, args.hires_steps, args.hires_strength, args.hires_upscaler,
                                    args.hires_model)
    if args.variation_seed is not None or args.variation_strength is not None or args.seed_resize_from is not None:
        width, height = args.seed_resize_from or (0, 0)
        strength = args.variation_strength if args.variation_strength is not None else (0.0 if args.variation_seed is None else 0.5)
        changes["variation"] = Variation(args.variation_seed or 0, strength, width, height)
    return recipe.with_(**changes)


def picture_size(path: Path, outpaint: Outpaint, info: ModelInfo) -> tuple[int, int]:
    """The init picture's size with the margins, down to the latent factor, within the model's range."""
    from PIL import Image

    with Image.open(path) as picture:
        width, height = outpaint.extended(*picture.size)
    factor = info.latent_factor
    return tuple(min(max(side // factor * factor, info.min_size), info.max_size // factor * factor)
                 for side in (width, height))
