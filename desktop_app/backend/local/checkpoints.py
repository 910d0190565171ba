"""Loading single-file checkpoints (SD 1.x, SD 2.x, SDXL and its refiner) offline, and checking them.

The file's family and kind come from ``checkpoint_facts`` (its header, no torch). Then the exact key →
shape map of the file is compared with what each shipped architecture (``resources/architectures``,
built on the meta device, so nothing is allocated) would write into a single file: real files
resolve to sd15 / sd2 / sdxl / sdxl-refiner and the test fixtures to their tiny architectures by the
same code. The match becomes the ``config=`` of diffusers' ``from_single_file``, which is offline only
that way; the shipped CLIP tokenizer is passed in, and after every load the checks MODELS.md lists
run (nothing left on ``meta``, the tokenizer's size and reference ids), because diffusers fails
silently on both.

Pickled ``.ckpt``/``.pt``/``.bin`` files are first converted once, safely, by ``pickles``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from desktop_app.backend.local import checkpoint_facts as facts_mod
from desktop_app.backend.local import ldm_layout
from desktop_app.backend.local.checkpoint_facts import (
    CheckpointFacts,
    Header,
    PredictionTypeUnknown,  # noqa: F401  (raised by load_checkpoint)
)
from desktop_app.core import paths
from desktop_app.core.models import ModelLoadError

REFERENCE_TEXT = "a photo of a cat"
REFERENCE_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]
VOCAB_SIZE = 49408
PAD_EOS, PAD_BANG = "<|endoftext|>", "!"


# ---- the shipped architectures -------------------------------------------------------------------------


def architectures_dir() -> Path:
    return paths.resource_path("architectures")


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def architecture_layout(arch: str) -> str:
    """The ldm_layout.LAYOUTS entry of a shipped architecture. SD 1.x and SD 2.x share a pipeline; their
    text encoders differ in kind: OpenAI's CLIP ViT-L uses quick_gelu, OpenCLIP ViT-H (SD 2.x) gelu."""
    folder = architectures_dir() / arch
    index = _json(folder / "model_index.json")
    if index["_class_name"].startswith("StableDiffusionXL"):
        return "SDXL" if (index.get("text_encoder") or [None])[0] else "SDXL refiner"
    act = _json(folder / "text_encoder" / "config.json").get("hidden_act")
    return "SD 1.x" if act == "quick_gelu" else "SD 2.x"


def shipped_architectures() -> list[str]:
    return sorted(p.name for p in architectures_dir().iterdir() if (p / "model_index.json").is_file())


def _meta_shapes(arch: str, component: str, overrides: tuple[tuple[str, Any], ...]) -> tuple[dict, dict]:
    """(config, diffusers key → shape) of one component, built on the meta device."""
    import diffusers
    import transformers

    folder = architectures_dir() / arch / component
    config = _json(folder / "config.json") | dict(overrides)
    with torch.device("meta"):
        if component in ("unet", "vae"):
            cls = diffusers.UNet2DConditionModel if component == "unet" else diffusers.AutoencoderKL
            model = cls.from_config(config)
        else:
            cls = getattr(transformers, config.get("architectures", ["CLIPTextModel"])[0])
            kept = {k: v for k, v in config.items() if k not in ("architectures", "model_type")}
            model = cls(transformers.CLIPTextConfig(**kept))
    return config, {k: tuple(v.shape) for k, v in model.state_dict().items()}


@lru_cache(maxsize=32)
def expected_shapes(arch: str, in_channels: int | None = None) -> dict[str, tuple[int, ...]]:
    """The key → shape map a single file of ``arch`` holds (UNet input channels overridable: inpainting)."""
    layout = ldm_layout.LAYOUTS[architecture_layout(arch)]
    configs, shapes = {}, {}
    for component in layout:
        if not (architectures_dir() / arch / component / "config.json").is_file():
            continue
        overrides = (("in_channels", in_channels),) if component == "unet" and in_channels else ()
        configs[component], shapes[component] = _meta_shapes(arch, component, overrides)
    return ldm_layout.ldm_shapes(layout, configs, shapes)


_RESBLOCK = re.compile(r"transformer\.resblocks\.(\d+)\.")


def _allowed_extra(key: str, prefix: str, kind: str, layers: int) -> bool:
    """Tensors real files carry that the diffusers model does not use (MODELS.md)."""
    rest = key[len(prefix):]
    if rest.endswith("position_ids") or rest.startswith("loss."):
        return True
    if kind == "openclip":
        if rest in ("logit_scale", "text_projection", "attn_mask"):
            return True
        match = _RESBLOCK.match(rest)  # SD 2.x keeps OpenCLIP's last layer, which it skips
        return bool(match and int(match.group(1)) == layers)
    return False


def _file_shapes(header: Header, facts: CheckpointFacts) -> dict[str, tuple[int, ...]]:
    shapes = dict(header.shapes)
    if facts.old_clip_layout:
        old, new = "cond_stage_model.transformer.", "cond_stage_model.transformer.text_model."
        shapes = {(new + k[len(old):] if k.startswith(old) and not k.startswith(new) else k): v for k, v in shapes.items()}
    return shapes


def differences(arch: str, header: Header, facts: CheckpointFacts) -> list[str]:
    """What keeps ``arch`` from matching the file (empty: it matches)."""
    layout = ldm_layout.LAYOUTS[facts.layout]
    expected = expected_shapes(arch, facts.in_channels)
    found = _file_shapes(header, facts)
    wanted_prefixes = [(prefix, kind, comp) for comp, (kind, prefix) in layout.items()
                       if comp != "vae" or facts.has_vae]
    problems = []
    for key, shape in expected.items():
        if key.startswith(ldm_layout.VAE_PREFIX) and not facts.has_vae:
            continue
        if key not in found:
            problems.append(f"{key} is missing")
        elif tuple(found[key]) != shape:
            problems.append(f"{key} is {list(found[key])}, {arch} has {list(shape)}")
    for key in found:
        for prefix, kind, component in wanted_prefixes:
            if key.startswith(prefix) and key not in expected:
                layers = _json(architectures_dir() / arch / component / "config.json").get("num_hidden_layers", -1)
                if not _allowed_extra(key, prefix, kind, layers):
                    problems.append(f"{key} is not part of {arch}")
    return problems


def match_architecture(header: Header, facts: CheckpointFacts) -> str:
    """The shipped architecture whose key → shape map the file has exactly; ModelLoadError if none."""
    candidates = [a for a in shipped_architectures() if architecture_layout(a) == facts.layout]
    best: tuple[int, str, list[str]] | None = None
    for arch in candidates:
        problems = differences(arch, header, facts)
        if not problems:
            return arch
        if best is None or len(problems) < best[0]:
            best = (len(problems), arch, problems)
    detail = f" (closest: {best[1]}, {best[0]} tensors differ, e.g. {best[2][0]})" if best else ""
    raise ModelLoadError(header.path, f"is an {facts.family} checkpoint of a shape no shipped architecture has"
                                      f"{detail}")


# ---- tokenizer and checks --------------------------------------------------------------------------------


def shipped_tokenizer(pad: str = PAD_EOS):
    """The CLIP BPE tokenizer shipped in resources/tokenizers/clip, with ``pad`` as its pad token
    (``<|endoftext|>``: SD 1.x and SDXL's first encoder; ``!``: SD 2.x and SDXL's second)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(paths.resource_path("tokenizers", "clip")), pad_token=pad,
                                         model_max_length=77, local_files_only=True)


def check_tokenizer(tokenizer, path: Path, name: str = "tokenizer") -> None:
    size = len(tokenizer)
    if size != VOCAB_SIZE:
        raise ModelLoadError(path, f"loaded with a {name} of {size} entries instead of {VOCAB_SIZE}; "
                                   "the tokenizer files are missing or damaged")
    ids = tokenizer(REFERENCE_TEXT).input_ids
    if list(ids) != REFERENCE_IDS:
        raise ModelLoadError(path, f"loaded with a {name} that reads {REFERENCE_TEXT!r} as {list(ids)}, "
                                   f"not {REFERENCE_IDS}; the tokenizer files are wrong")


def check_filled(pipe, path: Path) -> None:
    """No tensor left on ``meta`` (diffusers leaves what a file lacks there, silently)."""
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            left = [k for k, v in [*component.named_parameters(), *component.named_buffers()] if v.is_meta]
            if left:
                raise ModelLoadError(path, f"did not fill the {name}: {len(left)} tensors were not in the file "
                                           f"(e.g. {left[0]}); the file is incomplete or of another architecture")


def check_loaded(pipe, path: Path) -> None:
    """MODELS.md's checks after every load: no tensor left on ``meta``, the CLIP tokenizer(s) intact."""
    check_filled(pipe, path)
    for name in ("tokenizer", "tokenizer_2"):
        if getattr(pipe, name, None) is not None:
            check_tokenizer(getattr(pipe, name), path, name)


@contextlib.contextmanager
def hub_offline():
    """HF_HUB_OFFLINE=1 for the duration, whatever the user's environment says (a user's
    HF_HUB_OFFLINE=0 must not let from_single_file go looking for configs). huggingface_hub reads the
    variable once at import, so its module constant is set too. Not thread-safe: loads run on the
    engine's one thread."""
    from huggingface_hub import constants

    saved_env, saved_const = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved_const
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


# ---- loading ---------------------------------------------------------------------------------------------


@dataclass
class LoadedCheckpoint:
    pipe: Any
    facts: CheckpointFacts
    architecture: str
    source: Path  # the file that was read (a pickle's converted copy in the cache)


def _scheduler(arch: str, prediction: str):
    import diffusers

    config = _json(architectures_dir() / arch / "scheduler" / "scheduler_config.json")
    cls = getattr(diffusers, config["_class_name"])
    return cls.from_config(config, prediction_type=prediction)


def _old_clip_text_encoder(source: Path, arch: str, dtype):
    """SD 1.x files whose CLIP keys lack ``text_model.``: diffusers refuses them, so the text encoder is
    built from the architecture's config and given the renamed tensors."""
    import transformers
    from safetensors import safe_open

    config = _json(architectures_dir() / arch / "text_encoder" / "config.json")
    kept = {k: v for k, v in config.items() if k not in ("architectures", "model_type")}
    model = transformers.CLIPTextModel(transformers.CLIPTextConfig(**kept))
    inner = "text_model." if hasattr(model, "text_model") else ""
    prefix = "cond_stage_model.transformer."
    wanted = model.state_dict().keys()
    state = {}
    with safe_open(str(source), framework="pt") as fh:
        for key in fh.keys():
            name = inner + key[len(prefix):] if key.startswith(prefix) else None
            if name in wanted:
                state[name] = fh.get_tensor(key)
    model.load_state_dict(state, strict=True)
    return model.to(dtype).eval()


def load_checkpoint(path: Path | str, *, dtype=torch.float32, prediction: str | None = None, vae=None,
                    task: str | None = None, pipeline_class: str | None = None) -> LoadedCheckpoint:
    """Load a single-file checkpoint offline, on the CPU, checked.

    ``prediction`` ("epsilon"/"v_prediction") overrides what the file says; an SD 2.x file that says
    nothing raises PredictionTypeUnknown. ``vae``: a loaded AutoencoderKL to use instead of the file's
    own (required when the file has none). ``task``: refuse a kind that cannot do it (see
    ``checkpoint_facts.require_kind``). ``pipeline_class``: a diffusers pipeline name other than the
    kind's own (e.g. an img2img pipeline for a text-to-image file).
    """
    import diffusers

    from desktop_app.backend.local import pickles

    path = Path(path)
    source = pickles.safetensors_copy(path) if path.suffix.lower() in facts_mod.PICKLE_SUFFIXES else path
    header = dataclasses.replace(facts_mod.read_header(source), path=path)  # errors name the user's file
    facts = facts_mod.checkpoint_facts(header)
    if task:
        facts_mod.require_kind(facts, task)
    chosen = prediction or facts.prediction
    if chosen == "unknown":
        raise facts_mod.prediction_error(path)
    if not facts.has_vae and vae is None:
        raise facts_mod.no_vae_error(path)
    arch = match_architecture(header, facts)
    arch_dir = architectures_dir() / arch
    parts: dict[str, Any] = {"scheduler": _scheduler(arch, chosen)}
    if facts.layout == "SDXL refiner":
        parts.update(tokenizer=None, text_encoder=None, tokenizer_2=shipped_tokenizer(PAD_BANG))
    elif facts.family == "SDXL":
        parts.update(tokenizer=shipped_tokenizer(PAD_EOS), tokenizer_2=shipped_tokenizer(PAD_BANG))
    else:
        parts["tokenizer"] = shipped_tokenizer(PAD_BANG if facts.family == "SD 2.x" else PAD_EOS)
    if vae is not None:
        parts["vae"] = vae
    if facts.old_clip_layout:
        parts["text_encoder"] = _old_clip_text_encoder(source, arch, dtype)
    cls = getattr(diffusers, pipeline_class or facts_mod.pipeline_class_name(facts))
    with hub_offline():
        arch_channels = _json(arch_dir / "unet" / "config.json").get("in_channels", 4)
        if facts.in_channels != arch_channels:  # inpainting / pix2pix: the same shapes but the first conv
            parts["unet"] = diffusers.UNet2DConditionModel.from_single_file(
                str(source), config=str(arch_dir), subfolder="unet", in_channels=facts.in_channels,
                local_files_only=True, torch_dtype=dtype)
        pipe = cls.from_single_file(str(source), config=str(arch_dir), local_files_only=True, torch_dtype=dtype,
                                    **parts)
    check_loaded(pipe, path)
    pipe.set_progress_bar_config(disable=True)
    return LoadedCheckpoint(pipe, facts, arch, source)
