"""SwarmUI: JSON in the ``parameters`` chunk (JPEG/WebP: EXIF UserComment), per its metadata docs.

``{"sui_image_params": {...}, "sui_extra_data": {...}, "sui_models": [...]}``. Parameter ids are
the parameter names lowercased without spaces (``prompt``, ``negativeprompt``, ``cfgscale``,
``seed``, ``steps``, ``width``, ``height``, ``model``, ``sampler``, ``scheduler``…); values may be
strings ("7.0"), lists may be comma-separated text; models are Swarm paths without the
``.safetensors`` suffix ("OfficialStableDiffusion/sd_xl_base_1.0"). The sampler names are
ComfyUI's (older versions wrote ``comfyuisampler``; the A1111 backend ``autowebuisampler``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from desktop_app.core.schedulers import find_by_a1111
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

_NOTES = {
    "loras": "LoRAs",
    "vae": "a separate VAE",
    "refinermodel": "a refiner model",
    "refinercontrolpercentage": "the share of steps the refiner takes",
    "refinerupscale": "the refiner's upscale",
    "refinermethod": "how the refiner runs",
    "clipstopatlayer": "skipped text-encoder layers",
    "variationseed": "a variation seed",
    "variationseedstrength": "the variation seed's strength",
    "controlnetmodel": "a ControlNet",
    "seamlesstileable": "seamless tiling",
    "cfgscale2": "a second CFG",
    "initimage": "the source image (image to image)",
}
_USED = {
    "prompt",
    "negativeprompt",
    "seed",
    "steps",
    "cfgscale",
    "width",
    "height",
    "model",
    "sampler",
    "scheduler",
    "comfyuisampler",
    "comfyuischeduler",
    "autowebuisampler",
    "initimagecreativity",
    "loraweights",
    "loratencweights",
    *_NOTES,
}
_QUIET = frozenset(
    {
        "swarm_version",
        "aspectratio",
        "sidelength",
        "images",
        "batchsize",
        "automaticvae",
        "date",
        "generation_time",
        "rawresolution",
        "wildcardseed",
    }
)


def read_swarmui(chunks: dict[str, str], result: ImageMetadata) -> None:
    data = load_json_object(chunks["parameters"])
    params = data.get("sui_image_params") if data is not None else None
    if not isinstance(params, dict):
        return  # someone else's parameters
    put_text(result, "prompt", params.get("prompt", ""))
    put_text(result, "negative_prompt", params.get("negativeprompt"))
    put_int(result, "seed", params.get("seed"))
    put_int(result, "steps", params.get("steps"))
    put_float(result, "guidance_scale", params.get("cfgscale"), "cfgscale")
    put_int(result, "width", params.get("width"))
    put_int(result, "height", params.get("height"))
    _read_sampler(params, result)
    if isinstance(params.get("model"), str) and params["model"]:
        result.request["model_id"] = model_stem(params["model"])
        result.info["model"] = {"name": params["model"]}
    result.info["versions"] = {"SwarmUI": str(params.get("swarm_version", ""))}
    for key in ("sui_extra_data", "sui_models"):
        if data.get(key):
            result.info[key] = data[key]
    _note_params(params, result)
    note_rest(result, params, _USED, "SwarmUI", _QUIET)
    result.source = "swarmui"


def _read_sampler(params: dict[str, Any], result: ImageMetadata) -> None:
    sampler = params.get("sampler", params.get("comfyuisampler"))
    if isinstance(sampler, str) and sampler:
        schedule = params.get("scheduler", params.get("comfyuischeduler", "normal"))
        put_scheduler(result, from_comfy(sampler, str(schedule or "normal"), tool="SwarmUI"))
    elif isinstance(params.get("autowebuisampler"), str):
        spec = find_by_a1111(params["autowebuisampler"])
        if spec is not None:
            result.request["scheduler"] = spec.name
        else:
            note(result, "sampler", params["autowebuisampler"], "an A1111 sampler with no equivalent here")


def _note_params(params: dict[str, Any], result: ImageMetadata) -> None:
    strength = to_float(params.get("initimagecreativity"))
    if params.get("initimage") and strength is not None:
        result.info["source"] = {"image": "", "strength": strength}
    for key, why in _NOTES.items():
        value = params.get(key)
        if value in (None, "", [], "None", "none", "Automatic"):
            continue
        if key == "loras":
            value = _with_weights(value, params.get("loraweights"))
        if key == "initimage":
            value = f"an image (creativity {show(params.get('initimagecreativity'))})"
        note(result, key, value, why)


def _with_weights(loras: Any, weights: Any) -> str:
    names = loras if isinstance(loras, list) else [x.strip() for x in str(loras).split(",") if x.strip()]
    values = weights if isinstance(weights, list) else [x.strip() for x in str(weights or "").split(",")]
    shown = []
    for k, name in enumerate(names):
        weight = to_float(values[k]) if k < len(values) else None
        shown.append(f"{model_stem(str(name))} ({weight:g})" if weight is not None else model_stem(str(name)))
    return ", ".join(shown)
