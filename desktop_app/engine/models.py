"""Finding models on disk and telling what they are, without importing torch.

A model is a folder in diffusers layout (``model_index.json`` plus one folder per component).
Discovery reads only JSON files and safetensors headers, so the GUI can list models instantly;
loading happens in ``desktop_app.engine.loader`` on the engine thread.

A folder may carry ``diffuse_studio.json`` with extra facts the app uses: a display name, the
family, latent→RGB preview factors and recommended defaults. The built-in model does.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop_app import paths

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
SUPPORTED_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")
_CONFIG_FILES = {"scheduler": "scheduler_config.json", "tokenizer": "tokenizer_config.json", "tokenizer_2": "tokenizer_config.json"}
_WEIGHTLESS = ("scheduler", "tokenizer", "tokenizer_2", "feature_extractor")


class ModelLoadError(Exception):
    """A model folder that cannot be used; ``path`` is the file at fault."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str
    path: Path
    family: str  # "SD 1.x", "SD 2.x", "SDXL", "built-in", "custom"
    pipeline_class: str
    native_size: tuple[int, int]
    latent_factor: int
    latent_channels: int
    scheduler_config: dict[str, Any] = field(repr=False)
    preview_factors: dict[str, list] | None = field(default=None, repr=False)
    classifier_labels: dict[str, list[str]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def min_size(self) -> int:
        return self.latent_factor * 8

    @property
    def max_size(self) -> int:
        return max(self.native_size) * 4

    @property
    def has_classifier(self) -> bool:
        return bool(self.classifier_labels)

    def describe(self) -> str:
        w, h = self.native_size
        return f"{self.name} ({self.family}, {w}×{h})"


def read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelLoadError(path, "file is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(path, f"cannot be read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(path, "should hold a JSON object")
    return data


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
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelLoadError(path, "has a corrupt header; the file is damaged or not a safetensors file") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
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
    if name == "feature_extractor":
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


def _family(folder: Path, index: dict[str, Any], extra: dict[str, Any]) -> str:
    if extra.get("family"):
        return str(extra["family"])
    if "XL" in index.get("_class_name", ""):
        return "SDXL"
    try:
        hidden = read_json(folder / "text_encoder" / "config.json").get("hidden_size")
    except ModelLoadError:
        hidden = None
    return {768: "SD 1.x", 1024: "SD 2.x"}.get(hidden, "custom")


def inspect_model(folder: Path | str, model_id: str | None = None, *, check_weights: bool = True) -> ModelInfo:
    """Check a model folder thoroughly and describe it; raises ModelLoadError naming the bad file."""
    folder = Path(folder)
    index_file = folder / "model_index.json"
    if not index_file.exists():
        raise ModelLoadError(index_file, "not a model folder: model_index.json is missing")
    index = read_json(index_file)
    pipeline_class = index.get("_class_name", "")
    if pipeline_class not in SUPPORTED_PIPELINES:
        raise ModelLoadError(index_file, f"pipeline {pipeline_class!r} is not supported; supported: {', '.join(SUPPORTED_PIPELINES)}")
    for name, value in index.items():
        if not name.startswith("_") and isinstance(value, list) and value[0] is not None:
            if name in ("safety_checker", "feature_extractor", "image_encoder"):
                continue  # optional; never loaded
            _check_component(folder, name, check_weights)
    extra_file = folder / "diffuse_studio.json"
    extra = read_json(extra_file) if extra_file.exists() else {}
    unet = read_json(folder / "unet" / "config.json")
    vae = read_json(folder / "vae" / "config.json")
    factor = 2 ** (len(vae.get("block_out_channels", [0])) - 1)
    sample = unet.get("sample_size", 64)
    side = (sample if isinstance(sample, int) else sample[0]) * factor
    family = _family(folder, index, extra)
    preview = extra.get("preview_factors") or (SDXL_PREVIEW if family == "SDXL" else SD1_PREVIEW)
    labels = {}
    if (folder / "classifier" / "config.json").exists():
        labels = read_json(folder / "classifier" / "config.json").get("heads", {})
    return ModelInfo(
        id=model_id or folder.name,
        name=str(extra.get("name") or folder.name),
        path=folder.resolve(),
        family=family,
        pipeline_class=pipeline_class,
        native_size=(side, side),
        latent_factor=factor,
        latent_channels=int(unet.get("in_channels", 4)),
        scheduler_config=read_json(folder / "scheduler" / "scheduler_config.json"),
        preview_factors=preview if unet.get("in_channels", 4) == len(preview["matrix"]) else None,
        classifier_labels={k: list(v) for k, v in labels.items()},
        defaults=dict(extra.get("defaults", {})),
    )


@dataclass
class Discovery:
    models: list[ModelInfo]
    errors: list[ModelLoadError]


def search_paths(extra: list[Path | str] = ()) -> list[Path]:
    found = [paths.shipped_models_dir(), paths.user_models_dir(), *(Path(p).expanduser() for p in extra)]
    return [p for p in found if p is not None]


def discover(extra_paths: list[Path | str] = ()) -> Discovery:
    """Every model in the search paths; a broken one is an error and never hides the others."""
    models: dict[str, ModelInfo] = {}
    errors: list[ModelLoadError] = []
    for root in search_paths(extra_paths):
        if not root.is_dir():
            continue
        candidates = [root] if (root / "model_index.json").exists() else sorted(p for p in root.iterdir() if p.is_dir())
        for folder in candidates:
            if folder.name.startswith(".") or folder.name in models:
                continue
            if not (folder / "model_index.json").exists() and not any(folder.glob("*/config.json")):
                continue  # an unrelated folder, not a broken model
            try:
                models[folder.name] = inspect_model(folder)
            except ModelLoadError as exc:
                errors.append(exc)
            except OSError as exc:
                errors.append(ModelLoadError(folder, f"cannot be read ({exc})"))
    return Discovery(list(models.values()), errors)


def resolve_model(id_or_path: str, extra_paths: list[Path | str] = ()) -> ModelInfo:
    """A model by id from the search paths, or by a folder path; raises ModelLoadError."""
    candidate = Path(id_or_path).expanduser()
    if candidate.is_dir():
        return inspect_model(candidate)
    found = discover(extra_paths)
    for info in found.models:
        if info.id == id_or_path:
            return info
    for error in found.errors:
        if error.path.parent.name == id_or_path or id_or_path in error.path.parts:
            raise error
    known = ", ".join(m.id for m in found.models) or "none"
    raise ModelLoadError(id_or_path, f"no model with this id or path; known models: {known}")
