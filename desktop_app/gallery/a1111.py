"""The AUTOMATIC1111 ``parameters`` text: writing it for our images, reading it from anyone's.

The format (``modules/processing.py``, ``create_infotext``)::

    <prompt>
    Negative prompt: <negative prompt>
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 123, Size: 512x512, ...

The negative line is left out when empty; a value holding ``,`` ``:`` or ``"`` is JSON-quoted.
Settings A1111 has no key for (η, the DDPM variance, classifier guidance) go in as extra keys, so
our own text alone is enough to restore every setting that changes the image.

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
    if sampling.noise_seed_delta:
        pairs.append((KEY_ENSD, sampling.noise_seed_delta))
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
    for key in _INFO_KEYS:
        if key in pairs:
            result.info[key] = pairs.pop(key)
    result.unknown.update(pairs)
