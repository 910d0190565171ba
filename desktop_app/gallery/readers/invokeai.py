"""InvokeAI's three metadata formats, newest first.

- 3.x and later: ``invokeai_metadata``, a flat JSON object (``positive_prompt``, ``cfg_scale``,
  ``scheduler`` with ``_k`` for Karras, ``model`` as an object).
- 2.x: ``sd-metadata``, JSON with the model (``model_weights``, ``model_hash``, ``app_version``) and
  an ``image`` object: ``prompt`` as a list of ``{prompt, weight}``, ``steps``, ``cfg_scale``,
  ``sampler`` (``k_lms``), ``postprocessing``, ``variations``…
- 1.x/2.x: ``Dream``, the command line that makes the image again:
  ``"a prompt [negative words]" -s 50 -S 42 -W 512 -H 768 -C 7.5 -A k_lms``.

In 1.x/2.x prompts, words in square brackets are the negative prompt; they are split off here.
2.x images carry both ``sd-metadata`` and ``Dream``: the JSON is read (it names the model).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import TYPE_CHECKING, Any

from desktop_app.gallery.readers.common import (
    NO_CONTROL,
    is_set,
    model_stem,
    note,
    note_rest,
    put_float,
    put_int,
    put_scheduler,
    show,
    to_float,
)
from desktop_app.gallery.readers.samplers import from_invoke, from_invoke_legacy

if TYPE_CHECKING:
    from desktop_app.gallery.metadata import ImageMetadata

_QUIET_V2 = frozenset(
    {
        "type",
        "threshold",
        "perlin",
        "seamless",
        "hires_fix",
        "variations",
        "postprocessing",
        "init_image_path",
        "strength",
        "init_mask",
        "fit",
    }
)


# ---- 3.x and later: invokeai_metadata -------------------------------------------------------


def read_invokeai(chunks: dict[str, str], result: ImageMetadata) -> None:
    data = json.loads(chunks["invokeai_metadata"])
    if not isinstance(data, dict):
        raise ValueError("invokeai_metadata is not a JSON object")
    request = result.request
    request["prompt"] = str(data.get("positive_prompt", "") or "")
    if data.get("negative_prompt"):
        request["negative_prompt"] = str(data["negative_prompt"])
    put_int(result, "seed", data.get("seed"), "seed")
    put_int(result, "steps", data.get("steps"), "steps")
    put_float(result, "guidance_scale", data.get("cfg_scale"), "cfg_scale")
    put_int(result, "width", data.get("width"), "width")
    put_int(result, "height", data.get("height"), "height")
    if data.get("scheduler"):
        put_scheduler(result, from_invoke(str(data["scheduler"])))
    _read_v3_model(data.get("model"), result)
    used = {
        "positive_prompt",
        "negative_prompt",
        "seed",
        "steps",
        "cfg_scale",
        "width",
        "height",
        "scheduler",
        "model",
    }
    _note_v3(data, result)
    for key, value in data.items():  # the rest as written: generation_mode, rand_device, app_version…
        if key not in used and key not in result.unknown and is_set(value):
            result.unknown[key] = value
    result.source = "invokeai"


def _read_v3_model(model: Any, result: ImageMetadata) -> None:
    if isinstance(model, dict):
        name = model.get("name") or model.get("model_name") or ""
        if name:
            result.request["model_id"] = model_stem(str(name))
        result.info["model"] = {
            "name": name,
            "hash": model.get("hash", ""),
            "base": model.get("base") or model.get("base_model", ""),
        }
    elif isinstance(model, str) and model:
        result.request["model_id"] = model_stem(model)


def _note_v3(data: dict[str, Any], result: ImageMetadata) -> None:
    """Plain notes for the settings InvokeAI 3+ writes that change the picture."""
    names = {
        "loras": "LoRAs",
        "ipAdapters": "IP-Adapter image prompts",
        "controlnets": "ControlNets",
        "t2iAdapters": "T2I-Adapters",
        "vae": "a separate VAE",
        "refiner_model": "an SDXL refiner",
        "hrf_enabled": "InvokeAI's high-resolution fix",
        "seamless_x": "seamless tiling",
        "seamless_y": "seamless tiling",
        "clip_skip": "skipped text-encoder layers",
        "strength": "the image-to-image strength (the source image is not in this file)",
    }
    for key, why in names.items():
        value = data.get(key)
        if is_set(value):
            note(result, key, _model_names(value), why)
    if is_set(data.get("cfg_rescale_multiplier")):
        note(result, "cfg_rescale_multiplier", data["cfg_rescale_multiplier"], "CFG rescale")


def _model_names(value: Any) -> Any:
    """``[{"model": {"model_name": "x"}, "weight": 0.5}]`` → ``"x (0.5)"``: what a note should show."""

    def one(item: Any) -> str:
        if not isinstance(item, dict):
            return show(item)
        model = next(
            (
                item[k]
                for k in ("lora", "model", "ip_adapter_model", "control_model")
                if isinstance(item.get(k), dict)
            ),
            item,
        )
        name = model.get("model_name") or model.get("name") or model.get("key") or "?"
        weight = item.get("weight")
        return f"{name} ({weight:g})" if isinstance(weight, (int, float)) else str(name)

    if isinstance(value, list):
        return ", ".join(one(v) for v in value)
    return one(value) if isinstance(value, dict) else value


# ---- 2.x: sd-metadata -----------------------------------------------------------------------


def read_sd_metadata(chunks: dict[str, str], result: ImageMetadata) -> None:
    data = json.loads(chunks["sd-metadata"])
    if not isinstance(data, dict):
        raise ValueError("sd-metadata is not a JSON object")
    image = data.get("image")
    if isinstance(image, list) and image and isinstance(image[0], dict):
        image = image[0]
    if not isinstance(image, dict):
        raise ValueError("sd-metadata has no 'image' settings")
    prompt, weighted = _legacy_prompt(image.get("prompt"))
    result.request["prompt"], negative = split_negative(prompt)
    if negative:
        result.request["negative_prompt"] = negative
    if weighted:
        note(
            result, "prompt weights", weighted, "InvokeAI blended several weighted prompts; they were joined"
        )
    put_int(result, "steps", image.get("steps"))
    put_float(result, "guidance_scale", image.get("cfg_scale"), "cfg_scale")
    put_int(result, "seed", image.get("seed"))
    put_int(result, "width", image.get("width"))
    put_int(result, "height", image.get("height"))
    if isinstance(image.get("sampler"), str):
        put_scheduler(result, from_invoke_legacy(image["sampler"]))
    if isinstance(data.get("model_weights"), str) and data["model_weights"]:
        result.request["model_id"] = model_stem(data["model_weights"])
    result.info["model"] = {"name": data.get("model_weights", ""), "hash": data.get("model_hash", "")}
    result.info["versions"] = {"InvokeAI": data.get("app_version", "")}
    _note_v2(image, result)
    used = {"prompt", "steps", "cfg_scale", "seed", "width", "height", "sampler"}
    note_rest(result, image, used, "InvokeAI", _QUIET_V2)
    result.info["format"] = "sd-metadata"
    result.source = "invokeai"


def _legacy_prompt(raw: Any) -> tuple[str, str]:
    """The prompt text, and the weights shown when several prompts were blended."""
    if isinstance(raw, str):
        return raw, ""
    if not isinstance(raw, list):
        raise ValueError("sd-metadata has no prompt")
    parts = [
        (p.get("prompt"), p.get("weight", 1.0))
        for p in raw
        if isinstance(p, dict) and isinstance(p.get("prompt"), str)
    ]
    if not parts:
        raise ValueError("sd-metadata has no prompt")
    if len(parts) == 1:
        return parts[0][0], ""
    return " ".join(text for text, _ in parts), ", ".join(f"{text!r}: {weight}" for text, weight in parts)


def _note_v2(image: dict[str, Any], result: ImageMetadata) -> None:
    if image.get("type") not in (None, "txt2img"):
        strength = to_float(image.get("strength"))
        if strength is not None and image.get("type") == "img2img":
            result.info["source"] = {"image": str(image.get("init_image_path", "")), "strength": strength}
        note(
            result,
            "type",
            image["type"],
            f"an {image['type']} run (strength {show(image.get('strength'))}); the "
            f"source image is not in this file",
        )
    for step in image.get("postprocessing") or []:
        if isinstance(step, dict) and step.get("type"):
            details = ", ".join(f"{k} {show(v)}" for k, v in step.items() if k != "type")
            result.unknown[f"postprocessing {step['type']}"] = (
                f"{details}: InvokeAI's {step['type']} after the image was made; {NO_CONTROL}"
            )
    if is_set(image.get("variations")):
        note(result, "variations", image["variations"], "seed variations (seed, weight)")
    for key, why in (
        ("threshold", "InvokeAI's threshold"),
        ("perlin", "Perlin noise mixed in"),
        ("seamless", "seamless tiling"),
        ("hires_fix", "InvokeAI's high-resolution fix"),
    ):
        if is_set(image.get(key)):
            note(result, key, image[key], why)


# ---- 1.x/2.x: the Dream command line --------------------------------------------------------

# switch -> (field, kind); every other switch gets a note
_DREAM_FIELDS = {
    "-s": ("steps", int),
    "--steps": ("steps", int),
    "-S": ("seed", int),
    "--seed": ("seed", int),
    "-W": ("width", int),
    "--width": ("width", int),
    "-H": ("height", int),
    "--height": ("height", int),
    "-C": ("guidance_scale", float),
    "--cfg_scale": ("guidance_scale", float),
}
_DREAM_SAMPLER = ("-A", "--sampler", "--sampler_name", "-m")
_DREAM_NOTES = {
    "-G": "face restoration strength (GFPGAN)",
    "--gfpgan_strength": "face restoration strength (GFPGAN)",
    "-cf": "CodeFormer fidelity",
    "--codeformer_fidelity": "CodeFormer fidelity",
    "-ft": "face restoration tool",
    "-U": "upscaling (scale, strength)",
    "--upscale": "upscaling (scale, strength)",
    "-f": "the image-to-image strength",
    "--strength": "the image-to-image strength",
    "-I": "the source image (image to image)",
    "--init_img": "the source image (image to image)",
    "-M": "an inpainting mask",
    "-V": "seed variation amount",
    "-v": "seed variations",
    "--seamless": "seamless tiling",
    "--hires_fix": "InvokeAI's high-resolution fix",
    "--perlin": "Perlin noise mixed in",
    "--threshold": "InvokeAI's threshold",
}
_QUIET_DREAM = frozenset({"-n", "--iterations", "-b", "-F", "--fit", "-t", "--log_tokenization"})
_OPTION = re.compile(r"^--?[A-Za-z]")


def read_dream(chunks: dict[str, str], result: ImageMetadata) -> None:
    prompt, options = _split_dream(chunks["Dream"])
    result.request["prompt"], negative = split_negative(prompt)
    if negative:
        result.request["negative_prompt"] = negative
    for switch, values in options:
        if switch in _DREAM_FIELDS and values:
            target, kind = _DREAM_FIELDS[switch]
            (put_int if kind is int else put_float)(result, target, values[0], switch)
        elif switch in _DREAM_SAMPLER and values:
            put_scheduler(result, from_invoke_legacy(values[0]))
        elif switch not in _QUIET_DREAM:
            why = _DREAM_NOTES.get(switch, "an InvokeAI switch")
            note(result, switch, " ".join(values) or "on", why)
    result.info["format"] = "Dream"
    result.source = "invokeai"


def _split_dream(text: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """The quoted prompt, then each switch with the values after it."""
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote inside the prompt: the prompt runs to the last quote
        match = re.match(r'^\s*"(.*)"(.*)$', text, re.DOTALL)
        if not match:
            raise
        words = [match.group(1), *match.group(2).split()]
    if not words:
        raise ValueError("the Dream text is empty")
    first_switch = next((k for k, w in enumerate(words) if _OPTION.match(w)), len(words))
    prompt = " ".join(words[:first_switch])
    options: list[tuple[str, list[str]]] = []
    for word in words[first_switch:]:
        if _OPTION.match(word):
            options.append((word, []))
        elif options:
            options[-1][1].append(word)
    return prompt, options


def split_negative(prompt: str) -> tuple[str, str]:
    """InvokeAI 1.x/2.x: ``"a cat [dog, blurry]"`` → ``("a cat", "dog, blurry")`` (outer brackets only)."""
    kept: list[str] = []
    negative: list[str] = []
    depth, current = 0, []
    for ch in prompt:
        if ch == "[":
            if depth:
                current.append(ch)
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
            if depth:
                current.append(ch)
            else:
                negative.append("".join(current).strip())
                current = []
        elif depth:
            current.append(ch)
        else:
            kept.append(ch)
    if depth:  # an unclosed bracket is part of the prompt
        kept.append("[" + "".join(current))
    positive = re.sub(r"[ \t]{2,}", " ", "".join(kept)).strip()
    return positive, ", ".join(n for n in negative if n)
