"""Finding models on disk and telling what they are, without importing torch.

A model is a folder in diffusers layout (``model_index.json`` plus one folder per component) or a
single checkpoint file (``model_files``); LoRA, VAE and embedding files are listed beside them, and
other apps' folders are read in place (``catalog``, ``app_folders``). Discovery reads only JSON
files and safetensors headers, so listing models is quick; loading happens in
``desktop_app.backend.local.loader`` on the engine's thread.

A folder may carry ``diffuse_studio.json`` with extra facts the app uses: a display name, the
family, latent→RGB preview factors, recommended defaults and the words it knows. The built-in
model does. Every value read from a file is checked: a wrong one makes that folder an error that
names the file and the field, and never hides the other models.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from desktop_app.backend.local.folder_config import (
    check_classifier_config,
    check_defaults,
    check_scheduler_config,
    field,
    number,
    positive_ints,
    read_json,
    shown,
    whole,
)
from desktop_app.core import paths
from desktop_app.core.models import ModelCatalog, ModelInfo, ModelLoadError

__all__ = ["check_safetensors", "discover", "field", "inspect_model", "read_json", "resolve_model", "search_paths"]

# Latent → RGB factors (rows: latent channels; columns: R, G, B), applied to the latents the UNet
# sees (already multiplied by the VAE's scaling factor). Values published by ComfyUI.
SD1_PREVIEW = {
    "matrix": [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]],
    "bias": [0.0, 0.0, 0.0],
}
SDXL_PREVIEW = {
    "matrix": [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]],
    "bias": [0.1084, -0.0175, -0.0011],
}
# pipeline class -> what the model is for (an SDXL img2img folder without a first text encoder is a refiner)
SUPPORTED_PIPELINES = {
    "StableDiffusionPipeline": "txt2img",
    "StableDiffusionImg2ImgPipeline": "txt2img",
    "StableDiffusionXLPipeline": "txt2img",
    "StableDiffusionXLImg2ImgPipeline": "txt2img",
    "StableDiffusionInpaintPipeline": "inpaint",
    "StableDiffusionXLInpaintPipeline": "inpaint",
}
_CONFIG_FILES = {"scheduler": "scheduler_config.json", "tokenizer": "tokenizer_config.json", "tokenizer_2": "tokenizer_config.json"}
_WEIGHTLESS = ("scheduler", "tokenizer", "tokenizer_2", "feature_extractor")
_NEVER_LOADED = ("safety_checker", "feature_extractor", "image_encoder")
_LIBRARIES = ("diffusers", "transformers")  # what from_pretrained may import: never code from the folder


def check_safetensors(path: Path) -> None:
    """Raise ModelLoadError if a .safetensors file is truncated or its header is garbage."""
    size = path.stat().st_size
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ModelLoadError(path, f"is truncated ({size} bytes); download or copy it again")
            (header_len,) = struct.unpack("<Q", raw)
            if header_len > min(size - 8, 100_000_000):
                raise ModelLoadError(path, "has a corrupt header; the file is damaged or not a safetensors file")
            header = json.loads(fh.read(header_len))
        if not isinstance(header, dict):
            raise ValueError("not an object")
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError):
        raise ModelLoadError(path, "has a corrupt header; the file is damaged or not a safetensors file") from None
    if 8 + header_len + end > size:
        raise ModelLoadError(path, f"is truncated: {size} bytes on disk, {8 + header_len + end} expected; copy it again")


def _check_component(folder: Path, name: str, check_weights: bool = True) -> None:
    component = folder / name
    if not component.is_dir():
        raise ModelLoadError(component, f"component folder {name!r} named in model_index.json is missing")
    if name in ("tokenizer", "tokenizer_2"):
        if not any((component / f).exists() for f in ("vocab.json", "tokenizer.json")):
            raise ModelLoadError(component / "vocab.json", "the tokenizer has no vocabulary file")
        return
    read_json(component / _CONFIG_FILES.get(name, "config.json"))
    if name in _WEIGHTLESS or not check_weights:
        return
    weights = sorted(component.glob("*.safetensors")) + sorted(component.glob("*.bin"))
    if not weights:
        raise ModelLoadError(component, f"component {name!r} has no weights file (*.safetensors or *.bin)")
    for file in weights:
        if file.suffix == ".safetensors":
            check_safetensors(file)


def _components(index: dict[str, Any], index_file: Path) -> list[str]:
    """The component folders model_index.json names, checked for shape ([library, class] or [null, null])."""
    names = []
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list):
            continue
        if len(value) != 2 or not all(v is None or isinstance(v, str) for v in value):
            raise ModelLoadError(index_file, f"field {name!r} should be [library, class], not {shown(value)}")
        if value[0] is not None and name not in _NEVER_LOADED:
            if value[0] not in _LIBRARIES:
                raise ModelLoadError(index_file, f"field {name!r} names {value[0]!r}: only diffusers and transformers "
                                                 "parts can be loaded (Diffuse Studio runs no code from a model folder)")
            names.append(name)
    for required in ("unet", "vae", "scheduler"):
        if required not in names:
            raise ModelLoadError(index_file, f"field {required!r} should name the model's {required} component")
    return names


def _family(folder: Path, index: dict[str, Any], extra: dict[str, Any], extra_file: Path) -> str:
    family = field(extra, "family", str, extra_file)
    if family:
        return family
    if "XL" in index.get("_class_name", ""):
        return "SDXL"
    config_file = folder / "text_encoder" / "config.json"
    if not config_file.exists():
        return "custom"
    hidden = whole(read_json(config_file), "hidden_size", config_file, None, 1, 65536)
    return {768: "SD 1.x", 1024: "SD 2.x"}.get(hidden, "custom")


def _preview_factors(extra: dict[str, Any], extra_file: Path, family: str, channels: int) -> dict | None:
    factors = field(extra, "preview_factors", dict, extra_file)
    if factors is None:
        factors = SDXL_PREVIEW if family == "SDXL" else SD1_PREVIEW
    else:
        matrix, bias = factors.get("matrix"), factors.get("bias", [0.0, 0.0, 0.0])
        rows_ok = isinstance(matrix, list) and matrix and all(isinstance(r, list) and _three_numbers(r) for r in matrix)
        bias_ok = isinstance(bias, list) and _three_numbers(bias)
        if not rows_ok or not bias_ok:
            raise ModelLoadError(extra_file, "field 'preview_factors' should be {\"matrix\": rows of 3 numbers, "
                                             "\"bias\": 3 numbers}")
    return factors if channels == len(factors["matrix"]) else None


def _three_numbers(values: list) -> bool:
    return len(values) == 3 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                    for v in values)


def _classifier_labels(folder: Path, latent_channels: int) -> dict[str, list[str]]:
    config_file = folder / "classifier" / "config.json"
    if not config_file.exists():
        return {}
    heads = check_classifier_config(read_json(config_file), config_file, latent_channels)["heads"]
    return {k: list(v) for k, v in heads.items()}


def inspect_model(folder: Path | str, model_id: str | None = None, *, check_weights: bool = True) -> ModelInfo:
    """Check a model folder thoroughly and describe it; raises ModelLoadError naming the bad file."""
    folder = Path(folder)
    index_file = folder / "model_index.json"
    if not index_file.exists():
        raise ModelLoadError(index_file, "not a model folder: model_index.json is missing")
    index = read_json(index_file)
    pipeline_class = field(index, "_class_name", str, index_file, "")
    if pipeline_class not in SUPPORTED_PIPELINES:
        raise ModelLoadError(index_file, f"pipeline {pipeline_class!r} is not supported; supported: {', '.join(SUPPORTED_PIPELINES)}")
    components = _components(index, index_file)
    for name in components:
        _check_component(folder, name, check_weights)
    kind = SUPPORTED_PIPELINES[pipeline_class]
    if pipeline_class == "StableDiffusionXLImg2ImgPipeline" and "text_encoder" not in components:
        kind = "refiner"
    extra_file = folder / "diffuse_studio.json"
    extra = read_json(extra_file) if extra_file.exists() else {}
    unet_file, vae_file = folder / "unet" / "config.json", folder / "vae" / "config.json"
    unet, vae = read_json(unet_file), read_json(vae_file)
    factor = 2 ** (len(positive_ints(vae.get("block_out_channels", [64]), "block_out_channels", vae_file)) - 1)
    sample = unet.get("sample_size", 64)
    if isinstance(sample, list):
        sample = positive_ints(sample, "sample_size", unet_file)[0]
    else:
        sample = whole(unet, "sample_size", unet_file, 64, 1, 4096)
    whole(unet, "in_channels", unet_file, 4, 1, 64)
    channels = whole(vae, "latent_channels", vae_file, 4, 1, 64)
    number(vae, "scaling_factor", vae_file, 0.18215, 0, math.inf, above_low=True)
    family = _family(folder, index, extra, extra_file)
    name = field(extra, "name", str, extra_file) or folder.name
    defaults = check_defaults(field(extra, "defaults", dict, extra_file, {}), extra_file)
    vocabulary = field(extra, "vocabulary", list, extra_file, [])
    if not all(isinstance(word, str) for word in vocabulary):
        raise ModelLoadError(extra_file, "field 'vocabulary' should be a list of words")
    scheduler_file = folder / "scheduler" / "scheduler_config.json"
    return ModelInfo(
        id=model_id or folder.name,
        name=name,
        path=folder.resolve(),
        family=family,
        pipeline_class=pipeline_class,
        native_size=(sample * factor, sample * factor),
        latent_factor=factor,
        latent_channels=channels,
        scheduler_config=check_scheduler_config(read_json(scheduler_file), scheduler_file),
        preview_factors=_preview_factors(extra, extra_file, family, channels),
        classifier_labels=_classifier_labels(folder, channels),
        defaults=dict(defaults),
        kind=kind,
        vocabulary=tuple(vocabulary),
    )


def search_paths(extra: list[Path | str] = ()) -> list[Path]:
    found = [paths.shipped_models_dir(), paths.user_models_dir(create=False), *(Path(p).expanduser() for p in extra)]
    return [p for p in found if p is not None]


def folder_size(folder: Path) -> int:
    """Bytes of a model folder's weights files (its components' ``*.safetensors`` / ``*.bin``)."""
    total = 0
    for file in [*folder.glob("*/*.safetensors"), *folder.glob("*/*.bin")]:
        try:
            total += file.stat().st_size
        except OSError:
            pass
    return total


def discover(extra_paths: list[Path | str] = (), app_roots: list[Path | str] = ()) -> ModelCatalog:
    """Every model in the search paths and in other apps' roots: diffusers folders, checkpoint files,
    and the LoRAs, VAEs and embeddings beside them. A broken one is an error and never hides the
    others; a file linked into several places is listed once; a folder that is not there (an
    unplugged drive) is listed as offline. Reads JSON and safetensors headers only."""
    from desktop_app.backend.local.catalog import CatalogBuilder

    builder = CatalogBuilder()
    own = (paths.shipped_models_dir(), paths.user_models_dir(create=False))  # looking makes no folder
    for root in search_paths(extra_paths):
        builder.add_model_folder(root, required=Path(root) not in own)
    builder.add_app_roots(app_roots)
    return builder.catalog()


def model_folders(root: Path) -> list[Path]:
    """The candidate diffusers folders of a search root: the root itself, or its sub-folders."""
    return [root] if (root / "model_index.json").exists() else sorted(p for p in root.iterdir() if p.is_dir())


def looks_like_model_folder(folder: Path) -> bool:
    return (folder / "model_index.json").exists() or any(folder.glob("*/config.json"))


def resolve_model(id_or_path: str, extra_paths: list[Path | str] = (), app_roots: list[Path | str] = ()) -> ModelInfo:
    """A model by id from the search paths, or by a folder or checkpoint file path; raises ModelLoadError."""
    candidate = Path(id_or_path).expanduser()
    if candidate.is_dir():
        return inspect_model(candidate, str(candidate.resolve()))
    if candidate.is_file():
        from desktop_app.backend.local.catalog import file_model

        return file_model(candidate, str(candidate.resolve()))
    found = discover(extra_paths, app_roots)
    for info in found.models:
        if info.id == id_or_path:
            return info
    for error in found.errors:
        if error.path.parent.name == id_or_path or id_or_path in error.path.parts or error.path.stem == id_or_path:
            raise error
    known = ", ".join(m.id for m in found.models) or "none"
    raise ModelLoadError(id_or_path, f"no model with this id or path; known models: {known}")
