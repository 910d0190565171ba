"""The AUTOMATIC1111 ``parameters`` text: writing it for our images, reading it from anyone's.

The format (``modules/processing.py``, ``create_infotext``)::

    <prompt>
    Negative prompt: <negative prompt>
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 123, Size: 512x512, ...

The negative line is left out when empty; a value holding ``,`` ``:`` or ``"`` is JSON-quoted.
Keys come in A1111's order: Steps, Sampler, Schedule type, CFG scale, Seed, Size, Model hash, Model,
Variation seed, Variation seed strength, Seed resize from, Denoising strength, ENSD, then the
extras (Mask blur, Inpaint area, Masked area padding, Masked content, Hires upscale, Hires steps,
Hires upscaler, …, Lora hashes, TI hashes) and Version. With a hires fix, "Size" is the first
pass's and "Denoising strength" the second pass's, as A1111 writes them. Settings A1111 has no key
for (η, the DDPM variance, classifier guidance, outpaint margins) go in as extra keys, so our own
text alone is enough to restore every setting that changes the image (but the init picture and
mask, which only the JSON chunk points to).

LoRAs travel as A1111 writes them: ``<lora:name:weight>`` tags in the prompt (a LoRA add-on the
prompt does not tag is added as one, so A1111 applies it too) and their hashes in "Lora hashes";
embeddings, used by name in the prompt, have theirs in "TI hashes". Read back, the tags stay in the
prompt, where resolving the job turns them into add-ons again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from desktop_app.core.image_parts import FIT_MODES, INPAINT_AREAS, MASKED_CONTENT, UPSCALERS
from desktop_app.core.prompt_add_ons import prompt_with_tags
from desktop_app.core.recipe import Recipe
from desktop_app.core.schedulers import SCHEDULERS, find_by_a1111

# One `key: value` pair of the last line; the value is either JSON-quoted or runs to the next comma.
_PAIR = re.compile(r'\s*(\w[\w \-/+.()]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")

# Our extra keys (A1111 itself writes "Eta" for DDIM's η; the rest are ours).
KEY_ETA = "Eta"
KEY_VARIANCE = "DDPM variance"
KEY_CLASSIFIER = "Classifier"
KEY_CLASSIFIER_SCALE = "Classifier scale"
KEY_ENSD = "ENSD"  # A1111's "eta noise seed delta": the step noise's seed is the image's seed + this
KEY_OUTPAINT = "Outpaint"  # ours: "left,top,right,bottom" pixels added around the source picture
KEY_HIRES_STRENGTH = "Hires strength"  # ours: a hires pass after image to image (A1111 has one strength)


def quote(value: Any) -> str:
    text = str(value)
    if not any(ch in text for ch in ',:"\n'):
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            return str(json.loads(text))
        except json.JSONDecodeError:
            return text[1:-1]
    return text


def _number(value: float) -> str:
    """7.0 → "7" (as A1111 writes it), 7.25 → "7.25", and never a digit lost."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def format_parameters(
    recipe: Recipe,
    *,
    width: int,
    height: int,
    model_hash: str = "",
    model_name: str = "",
    version: str = "",
    lora_hashes: dict[str, str] | None = None,
    ti_hashes: dict[str, str] | None = None,
) -> str:
    """The ``parameters`` text for one image; ``recipe``'s seed must be that image's own seed."""
    sampling, guidance = recipe.sampling, recipe.guidance
    spec = SCHEDULERS.get(sampling.scheduler)
    pairs: list[tuple[str, Any]] = [("Steps", sampling.steps)]
    if spec is not None:
        pairs.append(("Sampler", spec.a1111_sampler or spec.name))
        pairs.append(("Schedule type", spec.a1111_schedule))
    else:
        pairs.append(("Sampler", sampling.scheduler))
    pairs += [("CFG scale", _number(float(guidance.scale))), ("Seed", recipe.output.seed), ("Size", f"{width}x{height}")]
    if model_hash:
        pairs.append(("Model hash", model_hash))
    pairs.append(("Model", model_name or recipe.model.id))
    pairs += _variation_pairs(recipe)
    source, hires = recipe.source, recipe.hires
    strength = source.strength if source is not None else hires.strength if hires is not None else None
    if strength is not None:
        pairs.append(("Denoising strength", _number(float(strength))))
    if sampling.noise_seed_delta:
        pairs.append((KEY_ENSD, sampling.noise_seed_delta))
    pairs += _source_pairs(recipe)
    pairs += _hires_pairs(recipe)
    if spec is not None and spec.takes_eta:
        pairs.append((KEY_ETA, _number(float(sampling.eta))))
    if spec is not None and spec.takes_variance:
        pairs.append((KEY_VARIANCE, sampling.ddpm_variance))
    if guidance.classifier_target.strip() and guidance.classifier_scale:
        pairs.append((KEY_CLASSIFIER, guidance.classifier_target))
        pairs.append((KEY_CLASSIFIER_SCALE, _number(float(guidance.classifier_scale))))
    if lora_hashes:
        pairs.append(("Lora hashes", hashes_text(lora_hashes)))
    if ti_hashes:
        pairs.append(("TI hashes", hashes_text(ti_hashes)))
    if version:
        pairs.append(("Version", version))
    lines = [prompt_with_tags(recipe)]
    if recipe.prompt.negative:
        lines.append(f"Negative prompt: {recipe.prompt.negative}")
    lines.append(", ".join(f"{key}: {quote(value)}" for key, value in pairs if value is not None))
    return "\n".join(lines)


def _variation_pairs(recipe: Recipe) -> list[tuple[str, Any]]:
    variation = recipe.variation
    if variation is None:
        return []
    pairs: list[tuple[str, Any]] = []
    if variation.strength > 0:
        pairs += [("Variation seed", variation.seed), ("Variation seed strength", _number(float(variation.strength)))]
    if variation.resizes:
        pairs.append(("Seed resize from", f"{variation.resize_from_width}x{variation.resize_from_height}"))
    return pairs


def _source_pairs(recipe: Recipe) -> list[tuple[str, Any]]:
    source = recipe.source
    if source is None:
        return []
    pairs: list[tuple[str, Any]] = []
    if source.masked:
        options = source.inpaint
        pairs.append(("Mask blur", options.blur))
        pairs.append(("Inpaint area", INPAINT_AREAS[options.area]))
        if options.area == "masked":
            pairs.append(("Masked area padding", options.padding))
        pairs.append(("Masked content", MASKED_CONTENT[options.content]))
    if source.fit != "resize":
        pairs.append(("Resize mode", FIT_MODES[source.fit]))
    margins = source.outpaint
    if margins.any:
        pairs.append((KEY_OUTPAINT, f"{margins.left},{margins.top},{margins.right},{margins.bottom}"))
    return pairs


def _hires_pairs(recipe: Recipe) -> list[tuple[str, Any]]:
    hires = recipe.hires
    if hires is None:
        return []
    pairs: list[tuple[str, Any]] = []
    if hires.model_id:
        pairs.append(("Hires checkpoint", hires.model_id))
    pairs.append(("Hires upscale", _number(float(hires.scale))))
    if hires.steps:
        pairs.append(("Hires steps", hires.steps))
    pairs.append(("Hires upscaler", UPSCALERS[hires.upscaler]))
    if recipe.source is not None:
        pairs.append((KEY_HIRES_STRENGTH, _number(float(hires.strength))))
    return pairs


@dataclass
class ParsedText:
    """What a ``parameters`` text said: request fields, keys we keep but cannot use, problems."""

    fields: dict[str, Any] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)  # known but not request fields (hash, version…)
    unknown: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def split_pairs(line: str) -> dict[str, str]:
    return {m.group(1).strip(): unquote(m.group(2)) for m in _PAIR.finditer(line)}


def _is_pairs_line(line: str) -> bool:
    return len(_PAIR.findall(line)) >= 3


def parse_parameters(text: str) -> ParsedText:
    """Read an A1111 ``parameters`` text; never raises, problems go to ``errors``."""
    result = ParsedText()
    if not isinstance(text, str) or not text.strip():
        result.errors.append("the parameters text is empty")
        return result
    lines = text.strip().split("\n")
    pairs: dict[str, str] = {}
    if _is_pairs_line(lines[-1]):
        pairs = split_pairs(lines.pop())
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    for line in lines:
        if line.startswith("Negative prompt:") or negative_lines:
            negative_lines.append(line[len("Negative prompt:"):].lstrip() if not negative_lines else line)
        else:
            prompt_lines.append(line)
    result.fields["prompt"] = "\n".join(prompt_lines).strip()
    result.fields["negative_prompt"] = "\n".join(negative_lines).strip()
    if not pairs:
        result.errors.append("no settings line (Steps: …, Sampler: …) was found; only the prompt was read")
    _read_pairs(pairs, result)
    return result


def _to_int(key: str, value: str, result: ParsedText) -> int | None:
    try:
        return int(float(value))
    except ValueError:
        result.errors.append(f"{key}: {value!r} is not a number")
        return None


def _to_float(key: str, value: str, result: ParsedText) -> float | None:
    try:
        return float(value)
    except ValueError:
        result.errors.append(f"{key}: {value!r} is not a number")
        return None


_INFO_KEYS = ("Model hash", "Version", "VAE", "VAE hash", "Lora hashes", "TI hashes")


def hashes_text(named: dict[str, str]) -> str:
    """A1111's "Lora hashes" / "TI hashes" value: ``name: hash, name: hash`` (quoted by the caller)."""
    return ", ".join(f"{name}: {digest}" for name, digest in named.items())


def parse_hashes(text: str) -> dict[str, str]:
    """The inverse of ``hashes_text``: {name: hash}."""
    found = {}
    for part in text.split(","):
        name, _, digest = part.rpartition(":")
        if name.strip() and digest.strip():
            found[name.strip()] = digest.strip()
    return found


def _read_pairs(pairs: dict[str, str], result: ParsedText) -> None:
    f = result.fields
    pairs = dict(pairs)
    if "Steps" in pairs and (v := _to_int("Steps", pairs.pop("Steps"), result)) is not None:
        f["steps"] = v
    if "CFG scale" in pairs and (x := _to_float("CFG scale", pairs.pop("CFG scale"), result)) is not None:
        f["guidance_scale"] = x
    if "Seed" in pairs and (v := _to_int("Seed", pairs.pop("Seed"), result)) is not None:
        f["seed"] = v
    if "Size" in pairs:
        size = pairs.pop("Size")
        match = _SIZE.match(size)
        if match:
            f["width"], f["height"] = int(match.group(1)), int(match.group(2))
        else:
            result.errors.append(f"Size: {size!r} is not WIDTHxHEIGHT")
    if "Sampler" in pairs:
        sampler, schedule = pairs.pop("Sampler"), pairs.pop("Schedule type", "")
        spec = find_by_a1111(sampler, schedule)
        if spec is None:
            result.unknown["Sampler"] = sampler + (f" ({schedule})" if schedule else "")
        else:
            f["scheduler"] = spec.name
            if schedule and schedule not in ("Automatic", spec.a1111_schedule):
                result.unknown["Schedule type"] = schedule
    if "Model" in pairs:
        f["model_id"] = pairs.pop("Model")
    if KEY_ETA in pairs and (x := _to_float(KEY_ETA, pairs.pop(KEY_ETA), result)) is not None:
        f["eta"] = x
    if KEY_ENSD in pairs and (v := _to_int(KEY_ENSD, pairs.pop(KEY_ENSD), result)) is not None:
        f["noise_seed_delta"] = v
    if KEY_VARIANCE in pairs:
        f["ddpm_variance"] = pairs.pop(KEY_VARIANCE)
    if KEY_CLASSIFIER in pairs:
        f["classifier_target"] = pairs.pop(KEY_CLASSIFIER)
    if KEY_CLASSIFIER_SCALE in pairs and (x := _to_float(KEY_CLASSIFIER_SCALE, pairs.pop(KEY_CLASSIFIER_SCALE), result)) is not None:
        f["classifier_scale"] = x
    _read_parts(pairs, result)
    for key in _INFO_KEYS:
        if key in pairs:
            result.info[key] = pairs.pop(key)
    result.unknown.update(pairs)


def _choice(key: str, value: str, table: dict[str, str], result: ParsedText) -> str | None:
    """Our name for A1111's ``value`` of ``key``; an unknown one is kept among the unknown keys."""
    for ours, theirs in table.items():
        if value.casefold() in (theirs.casefold(), ours):
            return ours
    result.unknown[key] = value
    return None


def _read_parts(pairs: dict[str, str], result: ParsedText) -> None:
    """Denoising strength, the mask's settings, the hires fix and the variation seed, as parts."""
    hires: dict[str, Any] = {}
    source: dict[str, Any] = {}
    inpaint: dict[str, Any] = {}
    variation: dict[str, Any] = {}
    ints = {"Hires steps": (hires, "steps"), "Mask blur": (inpaint, "blur"), "Masked area padding": (inpaint, "padding"),
            "Variation seed": (variation, "seed")}
    floats = {"Hires upscale": (hires, "scale"), KEY_HIRES_STRENGTH: (hires, "strength"),
              "Variation seed strength": (variation, "strength")}
    choices = {"Inpaint area": (inpaint, "area", INPAINT_AREAS), "Masked content": (inpaint, "content", MASKED_CONTENT),
               "Hires upscaler": (hires, "upscaler", UPSCALERS), "Resize mode": (source, "fit", FIT_MODES)}
    for key, (part, name) in ints.items():
        if key in pairs and (v := _to_int(key, pairs.pop(key), result)) is not None:
            part[name] = v
    for key, (part, name) in floats.items():
        if key in pairs and (x := _to_float(key, pairs.pop(key), result)) is not None:
            part[name] = x
    for key, (part, name, table) in choices.items():
        if key in pairs and (choice := _choice(key, pairs.pop(key), table, result)) is not None:
            part[name] = choice
    if "Hires checkpoint" in pairs:
        hires["model_id"] = pairs.pop("Hires checkpoint")
    if "Seed resize from" in pairs:
        size = pairs.pop("Seed resize from")
        match = _SIZE.match(size)
        if match:
            variation["resize_from_width"], variation["resize_from_height"] = int(match.group(1)), int(match.group(2))
        else:
            result.errors.append(f"Seed resize from: {size!r} is not WIDTHxHEIGHT")
    if KEY_OUTPAINT in pairs:
        margins = pairs.pop(KEY_OUTPAINT)
        try:
            left, top, right, bottom = (int(v) for v in margins.split(","))
            source["outpaint"] = {"left": left, "top": top, "right": right, "bottom": bottom}
        except ValueError:
            result.errors.append(f"{KEY_OUTPAINT}: {margins!r} is not left,top,right,bottom")
    if "Denoising strength" in pairs and (x := _to_float("Denoising strength", pairs.pop("Denoising strength"), result)) is not None:
        # with a hires fix and no picture to start from, A1111's one strength is the second pass's
        if hires and not (source or inpaint) and "strength" not in hires:
            hires["strength"] = x
        else:
            source["strength"] = x
    if inpaint:
        source["inpaint"] = inpaint
    if source:
        result.fields["source"] = {"image": "", **source}
    if hires:
        result.fields["hires"] = hires
    if variation:
        result.fields["variation"] = variation
