"""Fooocus (2.2 and later, "fooocus" metadata scheme): JSON in the ``parameters`` chunk.

Fooocus also writes a ``fooocus_scheme`` chunk ("fooocus", or "a1111" when it wrote A1111 text
instead, which the A1111 reader reads). JPEG/WebP keep the JSON in EXIF UserComment and the
scheme in MakerNote (``metadata.text_chunks`` gives both as chunks). What the JSON says:
``prompt`` and ``negative_prompt`` as typed; ``full_prompt`` / ``full_negative_prompt``, the
lists Fooocus sampled with after its styles and its GPT-2 "Fooocus V2" expansion; ``seed`` as a
string (64-bit); ``resolution`` as the text "(width, height)"; ``styles`` as the text of a Python
list; ComfyUI sampler names (``dpmpp_2m_sde_gpu`` + ``karras``); ``performance``, ``sharpness``,
``adm_guidance``, refiner and LoRAs, none of which have a control here.

The prompt read is the one typed: it is what the user can edit, and the styles' words are shown in
the note about the full prompt.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from desktop_app.gallery.readers.common import (
    load_json_object,
    model_stem,
    note,
    note_rest,
    put_float,
    put_int,
    put_scheduler,
    put_text,
    show,
    to_float,
)
from desktop_app.gallery.readers.samplers import from_comfy

if TYPE_CHECKING:
    from desktop_app.gallery.metadata import ImageMetadata

_PAIR = re.compile(r"^\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*$")
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
_USED = frozenset(
    {
        "prompt",
        "negative_prompt",
        "seed",
        "steps",
        "guidance_scale",
        "resolution",
        "sampler",
        "scheduler",
        "base_model",
        "styles",
        "performance",
        "sharpness",
        "adm_guidance",
        "refiner_model",
        "refiner_switch",
        "loras",
        "clip_skip",
        "vae",
        "full_prompt",
        "full_negative_prompt",
    }
)
_QUIET = frozenset({"version", "metadata_scheme", "base_model_hash", "prompt_expansion", "created_by"})


def is_fooocus(chunks: dict[str, str], data: dict[str, Any]) -> bool:
    version = data.get("version")
    return (
        chunks.get("fooocus_scheme") == "fooocus"
        or data.get("metadata_scheme") == "fooocus"
        or (isinstance(version, str) and version.startswith("Fooocus"))
    )


def read_fooocus(chunks: dict[str, str], result: ImageMetadata) -> None:
    data = load_json_object(chunks["parameters"])
    if data is None or not is_fooocus(chunks, data):
        return  # someone else's parameters (A1111 text, SwarmUI JSON)
    put_text(result, "prompt", data.get("prompt", ""))
    put_text(result, "negative_prompt", data.get("negative_prompt"))
    put_int(result, "seed", data.get("seed"))
    put_int(result, "steps", data.get("steps"))
    put_float(result, "guidance_scale", data.get("guidance_scale"))
    _read_resolution(data.get("resolution"), result)
    if isinstance(data.get("sampler"), str):
        put_scheduler(result, from_comfy(data["sampler"], str(data.get("scheduler") or ""), tool="Fooocus"))
    if isinstance(data.get("base_model"), str) and data["base_model"]:
        result.request["model_id"] = model_stem(data["base_model"])
    result.info["model"] = {"name": data.get("base_model", ""), "hash": data.get("base_model_hash", "")}
    result.info["versions"] = {"Fooocus": str(data.get("version", ""))}
    _note_look(data, result)
    _note_models(data, result)
    note_rest(
        result, data, set(_USED), "Fooocus", _QUIET | {k for k in data if k.startswith("lora_combined_")}
    )
    result.source = "fooocus"


def _read_resolution(raw: Any, result: ImageMetadata) -> None:
    if raw is None:
        return
    match = _PAIR.match(raw) if isinstance(raw, str) else None
    if match:
        result.request["width"], result.request["height"] = int(match.group(1)), int(match.group(2))
    else:
        result.errors.append(f"resolution: {show(raw)} is not (width, height)")


def _list_text(raw: Any) -> list[str]:
    """``"['Fooocus V2', 'Fooocus Sharp']"`` (a Python list written as text) or a real list → names."""
    if isinstance(raw, list):
        return [str(x) for x in raw]
    if isinstance(raw, str):
        return [a or b for a, b in _QUOTED.findall(raw[:10_000])]
    return []


def _note_look(data: dict[str, Any], result: ImageMetadata) -> None:
    styles = _list_text(data.get("styles"))
    if styles:
        note(
            result,
            "styles",
            ", ".join(styles),
            "Fooocus styles add their words to the prompt ('Fooocus V2' expands it with a language model)",
        )
    full = [p for p in data.get("full_prompt") or [] if isinstance(p, str)]
    full_negative = [p for p in data.get("full_negative_prompt") or [] if isinstance(p, str)]
    if full:
        result.info["full_prompt"], result.info["full_negative_prompt"] = full, full_negative
        if full != [data.get("prompt")]:
            note(
                result,
                "full_prompt",
                " | ".join(full),
                "the prompt Fooocus sampled with, after its styles and "
                "expansion (the prompt read is the one typed)",
            )
        if full_negative and full_negative != [data.get("negative_prompt")]:
            note(
                result,
                "full_negative_prompt",
                " | ".join(full_negative),
                "the negative prompt Fooocus's styles made",
            )
    for key, why in (
        ("performance", "Fooocus's performance preset (its step count is read as steps)"),
        ("sharpness", "Fooocus's sharpness filter"),
        ("adm_guidance", "Fooocus's ADM guidance scaling (positive, negative, end)"),
    ):
        if data.get(key) not in (None, ""):
            note(result, key, data[key], why)


def _note_models(data: dict[str, Any], result: ImageMetadata) -> None:
    refiner = data.get("refiner_model")
    if isinstance(refiner, str) and refiner not in ("", "None"):
        note(
            result,
            "refiner_model",
            f"{refiner} from {show(data.get('refiner_switch'))} of the steps",
            "a refiner model",
        )
    clip_skip = data.get("clip_skip")
    if clip_skip not in (None, 1, "1"):
        note(result, "clip_skip", clip_skip, "skipped text-encoder layers")
    vae = data.get("vae")
    if isinstance(vae, str) and vae and not vae.startswith("Default"):
        note(result, "vae", vae, "a separate VAE")
    loras = _loras(data)
    if loras:
        result.info["add_ons"] = [{"kind": "lora", "name": name, "weight": weight} for name, weight in loras]
        note(result, "loras", ", ".join(f"{model_stem(n)} ({w:g})" for n, w in loras), "LoRAs")


def _loras(data: dict[str, Any]) -> list[tuple[str, float]]:
    """``[[name, weight(, hash)]]``, ``["name : weight"]`` or ``lora_combined_N: "name : weight"``."""
    items: list[Any] = list(data.get("loras") or []) if isinstance(data.get("loras"), list) else []
    items += [v for k, v in sorted(data.items()) if k.startswith("lora_combined_")]
    found: list[tuple[str, float]] = []
    for item in items:
        if isinstance(item, (list, tuple)) and len(item) >= 2 and isinstance(item[0], str):
            name, weight = item[0], to_float(item[1])
        elif isinstance(item, str) and " : " in item:
            name, _, rest = item.rpartition(" : ")
            weight = to_float(rest)
        else:
            continue
        if name and name != "None":
            found.append((name, weight if weight is not None else 1.0))
    return found
