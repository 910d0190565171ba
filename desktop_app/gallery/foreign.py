"""Other tools' metadata: ComfyUI's ``prompt`` graph and InvokeAI's ``invokeai_metadata``.

Each reader fills an ``ImageMetadata`` (see ``metadata.py``) and may raise on garbage; the caller
turns any exception into a reported error.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from desktop_app.core.schedulers import SCHEDULERS

if TYPE_CHECKING:
    from desktop_app.gallery.metadata import ImageMetadata

COMFY_SAMPLERS = {
    "euler": "Euler", "euler_ancestral": "Euler a", "heun": "Heun", "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a", "lms": "LMS", "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_sde": "DPM++ SDE", "ddim": "DDIM", "uni_pc": "UniPC", "uni_pc_bh2": "UniPC", "lcm": "LCM",
    "ddpm": "DDPM", "deis": "DEIS", "plms": "PNDM",
}
INVOKE_SCHEDULERS = {
    "ddim": "DDIM", "ddpm": "DDPM", "deis": "DEIS", "lms": "LMS", "pndm": "PNDM", "heun": "Heun",
    "euler": "Euler", "euler_a": "Euler a", "kdpm_2": "DPM2", "kdpm_2_a": "DPM2 a", "dpmpp_2s": "DPM++ SDE",
    "dpmpp_sde": "DPM++ SDE", "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE", "unipc": "UniPC",
    "lcm": "LCM",
}
_SAMPLER_NODES = ("KSampler", "KSamplerAdvanced", "SamplerCustom")


def _model_stem(name: str) -> str:
    name = str(name)
    path = PureWindowsPath(name) if "\\" in name else PurePosixPath(name)
    return path.stem if path.suffix in (".safetensors", ".ckpt", ".pt", ".bin", ".pth") else path.name


def _scheduler(base: str | None, karras: bool, raw: str, result: ImageMetadata, key: str) -> None:
    if base is None:
        result.unknown[key] = raw
        return
    if karras:
        if f"{base} Karras" in SCHEDULERS:
            base = f"{base} Karras"
        else:
            result.unknown["schedule"] = "karras (not available for this sampler; used its default)"
    result.request["scheduler"] = base


# --- InvokeAI ----------------------------------------------------------------------------------


def read_invokeai(text: str, result: ImageMetadata) -> None:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("invokeai_metadata is not a JSON object")
    request: dict[str, Any] = {"prompt": str(data.get("positive_prompt", "") or "")}
    result.request = request
    if data.get("negative_prompt"):
        request["negative_prompt"] = str(data["negative_prompt"])
    for key, target, kind in (("seed", "seed", int), ("steps", "steps", int), ("cfg_scale", "guidance_scale", float),
                              ("width", "width", int), ("height", "height", int)):
        if data.get(key) is not None:
            try:
                request[target] = kind(data[key])
            except (TypeError, ValueError):
                result.errors.append(f"{key}: {data[key]!r} is not a number")
    if data.get("scheduler"):
        raw = str(data["scheduler"])
        karras = raw.endswith("_k")
        base = raw[:-2] if karras else raw
        _scheduler(INVOKE_SCHEDULERS.get(base), karras, raw, result, "scheduler")
    model = data.get("model")
    if isinstance(model, dict):
        name = model.get("name") or model.get("model_name") or ""
        request["model_id"] = _model_stem(name) if name else ""
        result.info["model"] = {"name": name, "hash": model.get("hash", ""), "base": model.get("base") or model.get("base_model", "")}
    elif isinstance(model, str):
        request["model_id"] = _model_stem(model)
    if not request.get("model_id"):
        request.pop("model_id", None)
    known = {"positive_prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height", "scheduler", "model"}
    for key, value in data.items():
        if key not in known and value not in (None, "", [], {}):
            result.unknown[key] = value
    result.source = "invokeai"


# --- ComfyUI -----------------------------------------------------------------------------------


def _link(value: Any) -> str | None:
    """A ComfyUI input linked to another node is ``[node_id, output_index]``."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)):
        return str(value[0])
    return None


def _follow_text(graph: dict[str, Any], node_id: str | None, seen: set[str] | None = None) -> str:
    """The prompt text reaching a sampler's ``positive`` / ``negative`` input."""
    seen = seen if seen is not None else set()
    if node_id is None or node_id in seen or node_id not in graph:
        return ""
    seen.add(node_id)
    node = graph[node_id]
    inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
    for key in ("text", "text_g", "text_l", "string", "value"):
        value = inputs.get(key)
        if isinstance(value, str):
            return value
        if _link(value):
            return _follow_text(graph, _link(value), seen)
    parts = [
        _follow_text(graph, _link(value), seen)
        for key, value in sorted(inputs.items())
        if _link(value) and ("conditioning" in key or key in ("positive", "negative", "clip"))
    ]
    return ", ".join(p for p in parts if p)


def _find_upstream(graph: dict[str, Any], node_id: str | None, want: tuple[str, ...], via: str) -> dict[str, Any] | None:
    seen: set[str] = set()
    while node_id is not None and node_id in graph and node_id not in seen:
        seen.add(node_id)
        node = graph[node_id]
        if node.get("class_type") in want or any(k in node.get("inputs", {}) for k in ("ckpt_name", "unet_name")) and via == "model":
            return node
        node_id = _link(node.get("inputs", {}).get(via))
    return None


def read_comfyui(text: str, result: ImageMetadata) -> None:
    graph = json.loads(text)
    if not isinstance(graph, dict) or not all(isinstance(v, dict) for v in graph.values()):
        raise ValueError("the prompt chunk is not a ComfyUI node graph")
    samplers = sorted((k for k, v in graph.items() if v.get("class_type") in _SAMPLER_NODES), key=lambda k: (len(k), k))
    if not samplers:
        custom = sorted((k for k, v in graph.items() if v.get("class_type") == "SamplerCustomAdvanced"), key=lambda k: (len(k), k))
        if custom:
            _read_comfyui_custom(graph, custom[0], result)
            return
        result.errors.append("the ComfyUI graph has no sampler node (KSampler, SamplerCustomAdvanced)")
        return
    if len(samplers) > 1:
        result.unknown["samplers"] = f"{len(samplers)} sampler nodes; used node {samplers[0]}"
    node = graph[samplers[0]]
    inputs = node.get("inputs", {})
    request: dict[str, Any] = {
        "prompt": _follow_text(graph, _link(inputs.get("positive"))),
        "negative_prompt": _follow_text(graph, _link(inputs.get("negative"))),
    }
    result.request = request
    seed = inputs.get("seed", inputs.get("noise_seed"))
    for value, target, kind in ((seed, "seed", int), (inputs.get("steps"), "steps", int), (inputs.get("cfg"), "guidance_scale", float)):
        if value is None:
            continue
        if _link(value):
            result.unknown[target] = "set by another node"
            continue
        try:
            request[target] = kind(value)
        except (TypeError, ValueError):
            result.errors.append(f"{target}: {value!r} is not a number")
    if isinstance(inputs.get("sampler_name"), str):
        raw = inputs["sampler_name"]
        schedule = inputs.get("scheduler") if isinstance(inputs.get("scheduler"), str) else "normal"
        _scheduler(COMFY_SAMPLERS.get(raw), schedule == "karras", raw, result, "sampler_name")
        if schedule not in ("normal", "karras", "simple"):
            result.unknown["scheduler"] = schedule
    denoise = inputs.get("denoise", 1.0)
    if isinstance(denoise, (int, float)) and denoise < 1.0:
        result.unknown["denoise"] = denoise
    latent = graph.get(_link(inputs.get("latent_image")) or "", {})
    latent_inputs = latent.get("inputs", {}) if isinstance(latent, dict) else {}
    for key in ("width", "height", "batch_size"):
        if isinstance(latent_inputs.get(key), int):
            request[key] = latent_inputs[key]
    loader = _find_upstream(graph, _link(inputs.get("model")), ("CheckpointLoaderSimple", "CheckpointLoader", "UNETLoader"), "model")
    if loader is not None:
        name = loader.get("inputs", {}).get("ckpt_name") or loader.get("inputs", {}).get("unet_name")
        if isinstance(name, str):
            request["model_id"] = _model_stem(name)
            result.info["model"] = {"name": name}
    result.source = "comfyui"


def _node_inputs(graph: dict[str, Any], value: Any) -> tuple[str, dict[str, Any]]:
    node = graph.get(_link(value) or "", {})
    return (node.get("class_type", ""), node.get("inputs", {})) if isinstance(node, dict) else ("", {})


def _read_comfyui_custom(graph: dict[str, Any], node_id: str, result: ImageMetadata) -> None:
    """Newer graphs: SamplerCustomAdvanced fed by RandomNoise, a guider, KSamplerSelect and a scheduler node."""
    inputs = graph[node_id].get("inputs", {})
    request: dict[str, Any] = {}
    result.request = request
    guider_type, guider = _node_inputs(graph, inputs.get("guider"))
    if "positive" in guider:
        request["prompt"] = _follow_text(graph, _link(guider.get("positive")))
        request["negative_prompt"] = _follow_text(graph, _link(guider.get("negative")))
    else:  # BasicGuider: one conditioning, no negative prompt
        request["prompt"] = _follow_text(graph, _link(guider.get("conditioning")))
    if isinstance(guider.get("cfg"), (int, float)):
        request["guidance_scale"] = float(guider["cfg"])
    elif guider_type == "BasicGuider":
        request["guidance_scale"] = 1.0
    _, noise = _node_inputs(graph, inputs.get("noise"))
    if isinstance(noise.get("noise_seed"), int):
        request["seed"] = noise["noise_seed"]
    _, sigmas = _node_inputs(graph, inputs.get("sigmas"))
    if isinstance(sigmas.get("steps"), int):
        request["steps"] = sigmas["steps"]
    _, sampler = _node_inputs(graph, inputs.get("sampler"))
    if isinstance(sampler.get("sampler_name"), str):
        schedule = sigmas.get("scheduler") if isinstance(sigmas.get("scheduler"), str) else "normal"
        _scheduler(COMFY_SAMPLERS.get(sampler["sampler_name"]), schedule == "karras", sampler["sampler_name"], result, "sampler_name")
    _, latent = _node_inputs(graph, inputs.get("latent_image"))
    for key in ("width", "height", "batch_size"):
        if isinstance(latent.get(key), int):
            request[key] = latent[key]
    loader = _find_upstream(graph, _link(guider.get("model") or sigmas.get("model")),
                            ("CheckpointLoaderSimple", "CheckpointLoader", "UNETLoader"), "model")
    if loader is not None:
        name = loader.get("inputs", {}).get("ckpt_name") or loader.get("inputs", {}).get("unet_name")
        if isinstance(name, str):
            request["model_id"] = _model_stem(name)
            result.info["model"] = {"name": name}
    result.source = "comfyui"
