"""NovelAI: the prompt in ``Description``, the settings as JSON in ``Comment``.

``Software`` is "NovelAI", ``Source`` names NovelAI's own model ("Stable Diffusion 1D44365E",
"NovelAI Diffusion V4 …"), ``Title`` is "AI generated image". ``Comment`` holds ``steps``,
``sampler`` (``k_euler_ancestral``…), ``seed``, ``scale`` (CFG), ``uc`` (the negative prompt), and
depending on the version ``width``/``height``, ``noise_schedule``, ``ucPreset``, ``qualityToggle``,
``sm``/``sm_dyn`` (SMEA), ``strength``/``noise`` (used only when NovelAI started from an image),
``cfg_rescale``, ``prompt`` and V4's ``v4_prompt``/``v4_negative_prompt`` captions. The same
chunks also come hidden in the alpha channel (see ``stealth.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from desktop_app.gallery.readers.common import (
    is_set,
    note,
    note_rest,
    put_float,
    put_int,
    put_scheduler,
    show,
)
from desktop_app.gallery.readers.samplers import from_novelai

if TYPE_CHECKING:
    from desktop_app.gallery.metadata import ImageMetadata

_MARKS = {"steps", "sampler", "scale", "uc", "seed"}
_USED = {
    "prompt",
    "uc",
    "steps",
    "sampler",
    "seed",
    "scale",
    "width",
    "height",
    "noise_schedule",
    "strength",
    "noise",
    "ucPreset",
    "qualityToggle",
    "sm",
    "sm_dyn",
    "v4_prompt",
    "v4_negative_prompt",
    "n_samples",
}
_QUIET = frozenset(
    {
        "signed_hash",
        "request_type",
        "params_version",
        "legacy",
        "legacy_v3_extend",
        "extra_noise_seed",
        "controlnet_strength",
        "uncond_scale",
        "add_original_image",
        "deliberate_euler_ancestral_bug",
        "prefer_brownian",
        "use_coords",
        "legacy_uc",
        "characterPrompts",
        "reference_strength_multiple",
        "reference_information_extracted_multiple",
    }
)


def read_novelai(chunks: dict[str, str], result: ImageMetadata) -> None:
    software = chunks.get("Software", "")
    if software != "NovelAI" and not chunks["Comment"].lstrip().startswith("{"):
        return  # a plain comment from another program
    data = json.loads(chunks["Comment"])
    if not isinstance(data, dict) or (software != "NovelAI" and not _MARKS <= set(data)):
        if software == "NovelAI":
            raise ValueError("the Comment chunk is not a JSON object of settings")
        return
    prompt = data.get("prompt") if isinstance(data.get("prompt"), str) else chunks.get("Description")
    result.request["prompt"] = prompt if isinstance(prompt, str) else _caption(data.get("v4_prompt"))
    negative = data.get("uc") if isinstance(data.get("uc"), str) else _caption(data.get("v4_negative_prompt"))
    if negative:
        result.request["negative_prompt"] = negative
    put_int(result, "seed", data.get("seed"))
    put_int(result, "steps", data.get("steps"))
    put_float(result, "guidance_scale", data.get("scale"), "scale")
    put_int(result, "width", data.get("width"))
    put_int(result, "height", data.get("height"))
    if isinstance(data.get("sampler"), str):
        put_scheduler(result, from_novelai(data["sampler"], str(data.get("noise_schedule") or "native")))
    source = chunks.get("Source", "")
    if source:
        result.request["model_id"] = source
        result.info["model"] = {"name": source}
        note(result, "model", source, "NovelAI's own model, which runs only on NovelAI")
    result.info["versions"] = {"NovelAI": software} if software else {}
    if chunks.get("Generation time"):
        result.info["generation_time"] = chunks["Generation time"]
    _note_settings(data, result)
    note_rest(result, data, _USED, "NovelAI", _QUIET)
    result.source = "novelai"


def _caption(value: Any) -> str:
    """V4's ``{"caption": {"base_caption": "…", "char_captions": [...]}}`` → the base caption."""
    caption = value.get("caption") if isinstance(value, dict) else None
    text = caption.get("base_caption") if isinstance(caption, dict) else None
    return text if isinstance(text, str) else ""


def _note_settings(data: dict[str, Any], result: ImageMetadata) -> None:
    if "strength" in data or "noise" in data:
        note(
            result,
            "strength",
            f"strength {show(data.get('strength'))}, noise {show(data.get('noise'))}",
            "NovelAI uses these only when it starts from an image; the file does not say whether it did",
        )
    if data.get("ucPreset") is not None:
        note(
            result,
            "ucPreset",
            data["ucPreset"],
            "NovelAI's undesired-content preset adds words NovelAI keeps to itself to the negative prompt",
        )
    if is_set(data.get("qualityToggle")):
        note(result, "qualityToggle", True, "NovelAI adds quality tags to the prompt")
    smea = [k for k in ("sm", "sm_dyn") if is_set(data.get(k))]
    if smea:
        note(
            result,
            "sm",
            " + ".join({"sm": "SMEA", "sm_dyn": "DYN"}[k] for k in smea),
            "NovelAI's SMEA sampler option",
        )
    if is_set(data.get("n_samples")) and data.get("n_samples") != 1:
        result.info["batch_size"] = data["n_samples"]
    for key in ("v4_prompt", "v4_negative_prompt"):
        caption = data[key].get("caption") if isinstance(data.get(key), dict) else None
        chars = caption.get("char_captions") if isinstance(caption, dict) else None
        if isinstance(chars, list) and chars:
            note(result, f"{key} characters", f"{len(chars)} character prompts", "V4's per-character prompts")
