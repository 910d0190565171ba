"""What one ComfyUI server offers, read from its ``/object_info/<class>`` answers: checkpoints,
LoRAs, VAEs, samplers and schedules. Also the ``ModelInfo`` this app shows for a server checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from desktop_app.core.models import ModelInfo

# class -> the combo inputs read from it
CLASSES: dict[str, tuple[str, ...]] = {
    "CheckpointLoaderSimple": ("ckpt_name",),
    "KSampler": ("sampler_name", "scheduler"),
    "LoraLoader": ("lora_name",),
    "VAELoader": ("vae_name",),
}
# SD's training schedule; ComfyUI gives no scheduler config, and every SD 1.x/2.x/XL checkpoint uses it
SD_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
               "beta_schedule": "scaled_linear", "steps_offset": 1, "timestep_spacing": "leading"}


@dataclass(frozen=True)
class ServerCapabilities:
    checkpoints: tuple[str, ...] = ()
    loras: tuple[str, ...] = ()
    vaes: tuple[str, ...] = ()
    samplers: frozenset[str] = field(default_factory=frozenset)
    schedulers: frozenset[str] = field(default_factory=frozenset)
    classes: frozenset[str] = field(default_factory=frozenset)  # the node classes that answered


def combo_options(spec: Any) -> list[str]:
    """The choices of a combo input: ``[[a, b], {…}]`` (0.3.x) or ``["COMBO", {"options": [a, b]}]`` (V3)."""
    if not isinstance(spec, list) or not spec:
        return []
    if isinstance(spec[0], list):
        return [v for v in spec[0] if isinstance(v, str)]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options", [])
        return [v for v in options if isinstance(v, str)] if isinstance(options, list) else []
    return []


def read_inputs(answer: Any, class_name: str) -> dict[str, list[str]]:
    """The combo options of ``class_name`` in an ``/object_info/<class>`` answer ({} if absent)."""
    info = answer.get(class_name) if isinstance(answer, dict) else None
    inputs = info.get("input") if isinstance(info, dict) else None
    if not isinstance(inputs, dict):
        return {}
    found: dict[str, list[str]] = {}
    for group in ("required", "optional"):
        entries = inputs.get(group)
        if isinstance(entries, dict):
            for name in CLASSES.get(class_name, ()):
                if name in entries:
                    found[name] = combo_options(entries[name])
    return found


def capabilities_from(answers: dict[str, Any]) -> ServerCapabilities:
    """From ``{class: its /object_info/<class> answer}``."""
    read = {name: read_inputs(answer, name) for name, answer in answers.items()}
    return ServerCapabilities(
        checkpoints=tuple(read.get("CheckpointLoaderSimple", {}).get("ckpt_name", [])),
        loras=tuple(read.get("LoraLoader", {}).get("lora_name", [])),
        vaes=tuple(read.get("VAELoader", {}).get("vae_name", [])),
        samplers=frozenset(read.get("KSampler", {}).get("sampler_name", [])),
        schedulers=frozenset(read.get("KSampler", {}).get("scheduler", [])),
        classes=frozenset(name for name, inputs in read.items() if inputs),
    )


def guess_family(ckpt_name: str) -> tuple[str, tuple[int, int]]:
    """A checkpoint's family and native size from its name alone: ComfyUI does not say."""
    name = ckpt_name.lower()
    if "xl" in name:
        return "SDXL", (1024, 1024)
    if any(tag in name for tag in ("sd2", "v2-", "sd_2", "768")):
        return "SD 2.x", (768, 768)
    return "SD 1.x", (512, 512)


def checkpoint_info(ckpt_name: str) -> ModelInfo:
    family, size = guess_family(ckpt_name)
    stem = PurePosixPath(ckpt_name.replace("\\", "/")).name.rsplit(".", 1)[0] or ckpt_name
    return ModelInfo(id=ckpt_name, name=stem, path=Path(ckpt_name),
                     family=family, pipeline_class="ComfyUI CheckpointLoaderSimple", native_size=size,
                     latent_factor=8, latent_channels=4, scheduler_config=dict(SD_SCHEDULE))
