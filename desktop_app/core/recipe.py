"""The recipe of an image: what the user asks for, in parts, and every way each part can be wrong.

A ``Recipe`` is the exact, device-independent description of a picture: the model (with its
add-ons), the prompt, the sampling, the guidance, the output (size, batch, seed) and, when they
apply, a source picture to start from, a second pass and a variation of the seed's noise
(``image_parts.py``). It is what goes into an image's metadata and what "use these settings" restores.
How a job runs (device, precision, previews, fast mode…) is not part of it: that is
``desktop_app.core.options.RunOptions``, and it is never written into an image.

Each part validates itself; ``Recipe.validate`` reports every problem of every part at once, each
tied to the field it concerns (``"sampling.steps"``), with a message a user can act on.

Two dict forms exist. ``to_dict``/``from_dict`` is the nested form of the image's JSON chunk
(format 2). ``flat``/``from_flat`` is one level of named fields (``prompt``, ``steps``,
``guidance_scale``…): the form the window's controls, the gallery index and other tools' readers
use; it is lossless, and format 1 images carried exactly its older subset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from desktop_app.core.image_parts import HiresFix, Inpainting, Outpaint, Source, Variation, steps_left
from desktop_app.core.problems import MAX_SEED, Problem, is_number, is_whole
from desktop_app.core.problems import check_range as _check_range
from desktop_app.core.problems import show as _show
from desktop_app.core.schedulers import SCHEDULERS, step_range
from desktop_app.core.text import undecodable

if TYPE_CHECKING:
    from desktop_app.core.models import ModelInfo

__all__ = ["MAX_SEED", "HiresFix", "Inpainting", "Outpaint", "Problem", "Recipe", "RecipeError", "Source", "Variation",
           "is_number", "is_whole"]

RECIPE_FORMAT = 2
MIN_STEPS, MAX_STEPS = 1, 1000
MAX_GUIDANCE = 50.0
MAX_CLASSIFIER_SCALE = 100.0
MAX_BATCH = 16
MAX_ADD_ON_WEIGHT = 10.0
DDPM_VARIANCES = {"fixed_small": "β̃ₜ (posterior variance)", "fixed_large": "βₜ"}
DEFAULT_MODEL_ID = "shapes"
ADD_ON_KINDS = ("lora", "vae", "embedding")


class RecipeError(ValueError):
    """A recipe dict that cannot be read at all (not a dict, no prompt); the message says why."""


# ---- the parts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddOn:
    """Something applied on top of the model: a LoRA with its weight, a VAE, an embedding."""

    kind: str
    name: str
    weight: float = 1.0

    def problems(self, where: str) -> list[Problem]:
        found: list[Problem] = []
        if self.kind not in ADD_ON_KINDS:
            found.append(Problem(where, f"add-on kind must be one of {', '.join(ADD_ON_KINDS)}, not {self.kind!r}"))
        if not isinstance(self.name, str) or not self.name.strip():
            found.append(Problem(where, "an add-on needs the name of its file"))
        _check_range(found, where, self.weight, -MAX_ADD_ON_WEIGHT, MAX_ADD_ON_WEIGHT, f"the weight of {self.name}")
        return found


@dataclass(frozen=True)
class ModelRef:
    id: str = DEFAULT_MODEL_ID
    add_ons: tuple[AddOn, ...] = ()

    def problems(self, model: ModelInfo | None, source: Source | None = None) -> list[Problem]:
        found: list[Problem] = []
        if model is None:
            found.append(Problem("model.id", f"no model called {self.id!r} was found; see `diffuse-studio models`"))
        elif model.kind == "inpaint" and source is not None and not source.masked:
            found.append(Problem("model.id", f"{model.name} is an inpainting model: paint a mask (or add outpaint "
                                             "margins), or choose a text-to-image model for plain image to image"))
        elif model.kind == "refiner" and source is not None and source.masked:
            found.append(Problem("model.id", f"{model.name} is an SDXL refiner: it refines whole pictures; "
                                             "choose a text-to-image or inpainting model to inpaint"))
        elif model.kind != "txt2img" and source is None:
            what = {"inpaint": "an inpainting model", "refiner": "an SDXL refiner"}.get(model.kind, f"a {model.kind} model")
            found.append(Problem("model.id", f"{model.name} is {what}: it cannot start a picture from a prompt alone; "
                                             "give it a picture to start from, or choose a text-to-image model"))
        for k, add_on in enumerate(self.add_ons):
            found.extend(add_on.problems(f"model.add_ons.{k}"))
        return found


@dataclass(frozen=True)
class Prompt:
    text: str
    negative: str = ""

    def problems(self) -> list[Problem]:
        found = []
        for name, what, value in (("prompt.text", "prompt", self.text), ("prompt.negative", "negative prompt", self.negative)):
            if not isinstance(value, str):
                found.append(Problem(name, f"a prompt must be text, not {type(value).__name__}"))
            elif (where := undecodable(value)) is not None:  # bytes from argv or a file that are not UTF-8
                found.append(Problem(name, f"the {what} holds bytes that are not UTF-8 text (at character {where}); "
                                           "type it again, or save the file it came from as UTF-8"))
        return found


@dataclass(frozen=True)
class Sampling:
    scheduler: str = "DPM++ 2M"
    steps: int = 20
    eta: float = 0.0  # DDIM only: 0 is deterministic DDIM, 1 matches DDPM's noise level
    ddpm_variance: str = "fixed_small"  # DDPM only: "fixed_small" is β̃ₜ, "fixed_large" is βₜ
    noise_seed_delta: int = 0  # A1111's "ENSD": 0 = step noise continues the seed's stream; else its own seed

    def problems(self, model: ModelInfo | None, scheduler_names: Iterable[str]) -> list[Problem]:
        found: list[Problem] = []
        names = list(scheduler_names)
        if self.scheduler not in names:
            found.append(Problem("sampling.scheduler", f"unknown scheduler {self.scheduler!r}; choose one of: {', '.join(names)}"))
        steps_ok = is_whole(self.steps) and MIN_STEPS <= self.steps <= MAX_STEPS
        if not steps_ok:
            found.append(Problem("sampling.steps", f"steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}, "
                                                   f"not {_show(self.steps)}"))
        elif model is not None and self.scheduler in SCHEDULERS:
            low, high = step_range(self.scheduler, model.scheduler_config)
            if not low <= self.steps <= high:
                found.append(Problem("sampling.steps", f"{self.scheduler} runs {low} to {high} steps on {model.name}, "
                                                       f"not {self.steps}"))
        if not is_number(self.eta) or not 0.0 <= self.eta <= 1.0:
            found.append(Problem("sampling.eta", f"η must be between 0 (deterministic DDIM) and 1 (DDPM-like), not {_show(self.eta)}"))
        if self.ddpm_variance not in DDPM_VARIANCES:
            found.append(Problem("sampling.ddpm_variance",
                                 f"DDPM variance must be one of {', '.join(DDPM_VARIANCES)}, not {self.ddpm_variance!r}"))
        if not is_whole(self.noise_seed_delta) or not 0 <= self.noise_seed_delta <= MAX_SEED:
            found.append(Problem("sampling.noise_seed_delta",
                                 f"the noise seed delta (ENSD) must be a whole number from 0 to {MAX_SEED}, "
                                 f"not {_show(self.noise_seed_delta)}"))
        return found


@dataclass(frozen=True)
class Guidance:
    scale: float = 7.0  # classifier-free guidance; 1 turns it off
    classifier_target: str = ""  # classifier guidance: class names, e.g. "red circle"; "" = off
    classifier_scale: float = 0.0

    @property
    def classifier_on(self) -> bool:
        return bool(isinstance(self.classifier_target, str) and self.classifier_target.strip()) and self.classifier_scale > 0

    def problems(self, model: ModelInfo | None) -> list[Problem]:
        found: list[Problem] = []
        _check_range(found, "guidance.scale", self.scale, 0, MAX_GUIDANCE, "the guidance scale")
        _check_range(found, "guidance.classifier_scale", self.classifier_scale, 0, MAX_CLASSIFIER_SCALE, "the classifier scale")
        if not isinstance(self.classifier_target, str):
            found.append(Problem("guidance.classifier_target", "the classifier target must be text"))
        elif self.classifier_target.strip() and model is not None:
            if not model.classifier_labels:
                found.append(Problem("guidance.classifier_target",
                                     f"{model.name} ships no classifier, so classifier guidance is not available"))
            else:
                known = {label for labels in model.classifier_labels.values() for label in labels}
                unknown = [w for w in self.classifier_target.split() if w not in known]
                if unknown:
                    found.append(Problem("guidance.classifier_target",
                                         f"the classifier does not know {', '.join(unknown)}; it knows: {', '.join(sorted(known))}"))
        return found


@dataclass(frozen=True)
class Output:
    width: int | None = None  # None: the model's native size
    height: int | None = None
    batch_size: int = 1
    seed: int | None = None  # None: the backend picks one and records it; image k uses seed + k

    def size_for(self, model: ModelInfo) -> tuple[int, int]:
        width = self.width if self.width is not None else model.native_size[0]
        height = self.height if self.height is not None else model.native_size[1]
        return width, height

    def problems(self, model: ModelInfo | None) -> list[Problem]:
        found: list[Problem] = []
        batch_ok = is_whole(self.batch_size) and 1 <= self.batch_size <= MAX_BATCH
        if not batch_ok:
            found.append(Problem("output.batch_size", f"batch size must be from 1 to {MAX_BATCH}, not {_show(self.batch_size)}"))
        if self.seed is not None:
            last = self.seed + (self.batch_size if batch_ok else 1) - 1 if is_whole(self.seed) else -1
            if not is_whole(self.seed) or self.seed < 0 or last > MAX_SEED:
                found.append(Problem("output.seed", f"seed must be from 0 to {MAX_SEED} (with the batch's seed + k), "
                                                    f"not {_show(self.seed)}"))
        if model is not None:
            found.extend(self._size_problems(model))
        return found

    def _size_problems(self, model: ModelInfo) -> list[Problem]:
        found: list[Problem] = []
        factor = model.latent_factor
        for name, value in zip(("width", "height"), self.size_for(model), strict=True):
            if not is_whole(value) or value % factor:
                lower = (int(value) // factor) * factor if is_number(value) else factor
                found.append(Problem(f"output.{name}", f"{name} must be a multiple of {factor} for {model.name}; "
                                                       f"try {max(lower, factor)} or {max(lower, 0) + factor}"))
            elif not model.min_size <= value <= model.max_size:
                found.append(Problem(f"output.{name}", f"{name} must be from {model.min_size} to {model.max_size} "
                                                       f"pixels for {model.name}, not {value}"))
        return found


# ---- the recipe --------------------------------------------------------------------------------

# flat name -> (part, field). The flat form is what the controls, the index and other tools use.
FLAT_FIELDS: dict[str, tuple[str, str]] = {
    "prompt": ("prompt", "text"),
    "negative_prompt": ("prompt", "negative"),
    "model_id": ("model", "id"),
    "add_ons": ("model", "add_ons"),
    "scheduler": ("sampling", "scheduler"),
    "steps": ("sampling", "steps"),
    "eta": ("sampling", "eta"),
    "ddpm_variance": ("sampling", "ddpm_variance"),
    "noise_seed_delta": ("sampling", "noise_seed_delta"),
    "guidance_scale": ("guidance", "scale"),
    "classifier_target": ("guidance", "classifier_target"),
    "classifier_scale": ("guidance", "classifier_scale"),
    "width": ("output", "width"),
    "height": ("output", "height"),
    "batch_size": ("output", "batch_size"),
    "seed": ("output", "seed"),
}
_PART_TYPES = {"model": ModelRef, "sampling": Sampling, "guidance": Guidance, "output": Output}
# Parts a recipe may leave out (None): in the flat form each is one named field holding the part's dict.
OPTIONAL_PARTS: dict[str, type] = {"source": Source, "hires": HiresFix, "variation": Variation}
_NESTED = {Source: {"inpaint": Inpainting, "outpaint": Outpaint}}
RECIPE_NAMES = frozenset(FLAT_FIELDS) | frozenset(OPTIONAL_PARTS)  # every name of the flat form


@dataclass(frozen=True)
class Recipe:
    prompt: Prompt
    model: ModelRef = ModelRef()
    sampling: Sampling = Sampling()
    guidance: Guidance = Guidance()
    output: Output = Output()
    source: Source | None = None
    hires: HiresFix | None = None
    variation: Variation | None = None

    # ---- building ------------------------------------------------------------------------------
    @classmethod
    def of(cls, prompt: str, **flat: Any) -> Recipe:
        """A recipe from flat field names: ``Recipe.of("a cat", steps=30, seed=1)``."""
        return cls(Prompt(prompt)).with_(**flat)

    def with_(self, **flat: Any) -> Recipe:
        """A copy with some flat fields changed (``source``, ``hires``, ``variation`` take the part,
        its dict form, or None)."""
        parts: dict[str, dict[str, Any]] = {}
        changes: dict[str, Any] = {}
        for name, value in flat.items():
            if name in OPTIONAL_PARTS:
                changes[name] = None if value is None else part_from(OPTIONAL_PARTS[name], value, name)
                continue
            if name not in FLAT_FIELDS:
                raise TypeError(f"a recipe has no field {name!r}")
            part, attribute = FLAT_FIELDS[name]
            if name == "add_ons":
                value = tuple(value)
            parts.setdefault(part, {})[attribute] = value
        for part, values in parts.items():
            changes[part] = dataclasses.replace(getattr(self, part), **values)
        return dataclasses.replace(self, **changes)

    def flat(self) -> dict[str, Any]:
        out = {name: getattr(getattr(self, part), attribute) for name, (part, attribute) in FLAT_FIELDS.items()}
        out["add_ons"] = [dataclasses.asdict(a) for a in self.model.add_ons]
        for name in OPTIONAL_PARTS:
            part = getattr(self, name)
            out[name] = dataclasses.asdict(part) if part is not None else None
        return out

    @classmethod
    def from_flat(cls, data: dict[str, Any]) -> Recipe:
        """From the flat form (also a format-1 ``request``); unknown keys are ignored."""
        if not isinstance(data, dict):
            raise RecipeError("the recipe is not a set of named fields")
        if "prompt" not in data:
            raise RecipeError("the recipe has no prompt")
        known = {k: v for k, v in data.items() if k in FLAT_FIELDS and k != "prompt"}
        if "add_ons" in known:
            known["add_ons"] = _add_ons(known["add_ons"])
        known.update({name: data[name] for name in OPTIONAL_PARTS if data.get(name) is not None})
        return cls(Prompt(data["prompt"])).with_(**known)

    # ---- the image's JSON (format 2) ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """From ``to_dict``'s nested form; unknown keys are ignored, values are checked by ``validate``."""
        if not isinstance(data, dict) or not isinstance(data.get("prompt"), dict) or "text" not in data["prompt"]:
            raise RecipeError("the recipe has no prompt")
        prompt = data["prompt"]
        parts: dict[str, Any] = {"prompt": Prompt(prompt["text"], prompt.get("negative", ""))}
        for name, part_type in _PART_TYPES.items():
            values = data.get(name) or {}
            if not isinstance(values, dict):
                raise RecipeError(f"the recipe's {name!r} part is not a set of named fields")
            names = {f.name for f in dataclasses.fields(part_type)}
            values = {k: v for k, v in values.items() if k in names}
            if name == "model" and "add_ons" in values:
                values["add_ons"] = _add_ons(values["add_ons"])
            parts[name] = part_type(**values)
        for name, part_type in OPTIONAL_PARTS.items():
            if data.get(name) is not None:
                parts[name] = part_from(part_type, data[name], name)
        return cls(**parts)

    # ---- checking -----------------------------------------------------------------------------
    def validate(self, model: ModelInfo | None, scheduler_names: Iterable[str] | None = None) -> list[Problem]:
        """Every problem with this recipe for ``model`` (None: the model was not found)."""
        names = list(SCHEDULERS) if scheduler_names is None else list(scheduler_names)
        problems = self.model.problems(model, self.source)
        problems += self.prompt.problems()
        problems += self.sampling.problems(model, names)
        problems += self.guidance.problems(model)
        problems += self.output.problems(model)
        if self.source is not None:
            problems += self.source.problems()
        if self.hires is not None:
            problems += self.hires.problems()
        if self.variation is not None:
            problems += self.variation.problems(model.latent_factor if model is not None else None)
        if not problems:
            problems += self._between_parts(model)
        return problems

    def _between_parts(self, model: ModelInfo | None) -> list[Problem]:
        """What no part can see alone: steps a strength leaves, the size a second pass reaches."""
        found: list[Problem] = []
        steps = self.sampling.steps
        if self.source is not None and steps_left(steps, self.source.strength) < 1:
            found.append(Problem("source.strength", f"at {steps} steps a strength of {self.source.strength:g} leaves no "
                                                    f"step to run; raise it to at least {1 / steps:.2g} or add steps"))
        if self.varies and self.variation.seed + self.output.batch_size - 1 > MAX_SEED:
            found.append(Problem("variation.seed", f"the variation seed must leave room for the batch "
                                                   f"(seed + {self.output.batch_size - 1} at most {MAX_SEED})"))
        if self.hires is not None:
            if self.source is not None and self.source.masked:
                found.append(Problem("hires.scale", "a second pass (hires fix) works on text to image and image to "
                                                    "image, not on inpainting or outpainting"))
            hires_steps = self.hires.schedule_steps(steps)
            if steps_left(hires_steps, self.hires.strength) < 1:
                found.append(Problem("hires.strength", f"at {hires_steps} steps a hires strength of "
                                                       f"{self.hires.strength:g} leaves no step to run"))
            if model is not None:
                width, height = self.output.size_for(model)
                final = self.hires.size_for(width, height, model.latent_factor)
                if max(final) > model.max_size or min(final) < model.min_size:
                    found.append(Problem("hires.scale", f"{width}×{height} upscaled {self.hires.scale:g}× is "
                                                        f"{final[0]}×{final[1]}, beyond what {model.name} makes "
                                                        f"({model.min_size} to {model.max_size} pixels a side)"))
        return found

    @property
    def varies(self) -> bool:
        """True when the batch varies one picture by variation seeds (all images share the seed)."""
        return self.variation is not None and is_number(self.variation.strength) and self.variation.strength > 0

    def image_seeds(self) -> list[int]:
        """Each image's seed: seed + k; when varying by variation seeds (as AUTOMATIC1111 does), the
        seed itself for every image and variation seed + k. Needs a resolved seed."""
        seed = self.output.seed
        return [seed if self.varies else seed + k for k in range(self.output.batch_size)]

    def for_image(self, index: int) -> Recipe:
        """The recipe of image ``index`` of this batch: its own seed (seed + index, or its own
        variation seed), batch size 1."""
        seed = None if self.output.seed is None else self.output.seed + (0 if self.varies else index)
        recipe = self.with_(seed=seed, batch_size=1)
        if self.varies:
            recipe = dataclasses.replace(recipe, variation=dataclasses.replace(self.variation, seed=self.variation.seed + index))
        return recipe


MAX_PIXELS = 16384  # a width or height beyond any model's reach, whatever the model


def value_problem(name: str, value: Any) -> str | None:
    """What is wrong with one flat field's value on its own (no model known), or None."""
    if name not in FLAT_FIELDS or name in ("add_ons", "model_id"):
        return None
    if name in ("prompt", "negative_prompt"):  # any text can be shown (a control drops what is not text)
        return None if isinstance(value, str) else f"a prompt must be text, not {type(value).__name__}"
    if name in ("width", "height"):
        if value is None or (is_whole(value) and 1 <= value <= MAX_PIXELS):
            return None
        return f"{name} must be a whole number of pixels from 1 to {MAX_PIXELS}, not {_show(value)}"
    if isinstance(value, (list, dict, tuple, set)):
        return f"{name} must be a single value, not {_show(value)}"
    part, attribute = FLAT_FIELDS[name]
    try:
        problems = Recipe.of("", **{name: value}).validate(None)
    except (TypeError, ValueError):
        return f"{name} cannot be {_show(value)}"
    found = [p.message for p in problems if p.field == f"{part}.{attribute}"]
    return found[0] if found else None


def usable_values(flat: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``flat`` with each value that fails its own check left out, and the names left out: what a
    damaged recipe (an old settings file, another tool's image) can still give."""
    usable, rejected = {}, []
    for name, value in flat.items():
        if value_problem(name, value) is None:
            usable[name] = value
        else:
            rejected.append(name)
    return usable, rejected


def _add_ons(value: Any) -> tuple[AddOn, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(a, (dict, AddOn)) for a in value):
        raise RecipeError("the recipe's add-ons are not a list of named fields")
    names = {f.name for f in dataclasses.fields(AddOn)}
    try:
        return tuple(a if isinstance(a, AddOn) else AddOn(**{k: v for k, v in a.items() if k in names}) for a in value)
    except TypeError:
        raise RecipeError("an add-on of the recipe has no kind or no name") from None


def part_from(part_type: type, value: Any, where: str) -> Any:
    """A part from its dict form (nested parts too); unknown keys are ignored, values are checked
    by ``validate``. Raises RecipeError when the value is not a dict or lacks a required field."""
    if isinstance(value, part_type):
        return value
    if not isinstance(value, dict):
        raise RecipeError(f"the recipe's {where!r} part is not a set of named fields")
    nested = _NESTED.get(part_type, {})
    names = {f.name for f in dataclasses.fields(part_type)}
    values = {k: (part_from(nested[k], v, f"{where}.{k}") if k in nested and v is not None else v)
              for k, v in value.items() if k in names}
    values = {k: v for k, v in values.items() if not (k in nested and v is None)}
    try:
        return part_type(**values)
    except TypeError:
        missing = [f.name for f in dataclasses.fields(part_type)
                   if f.default is dataclasses.MISSING and f.name not in values]
        raise RecipeError(f"the recipe's {where} has no {' or '.join(missing) or 'usable fields'}") from None
