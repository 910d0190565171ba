"""Single model files (checkpoints, LoRAs, VAEs, embeddings) as the catalog lists them: no torch.

Discovery finds files in the app's model folders (and the folders of other apps the user added,
``app_folders``); this module says what each is from its safetensors header and turns it into the
shared descriptions: a checkpoint becomes a ``ModelInfo`` (family, kind, the native size of the
shipped architecture it looks like), the rest ``AddOnInfo``s. What a file is depends only on its
bytes, so the answer is kept per (real path, size, modification time): listing a collection again
reads no header twice.

The architecture picked here is a torch-free likeness (the widths and block counts the configs
state); the loader matches the exact key → shape map before it loads (``checkpoints``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from desktop_app.backend.local import app_folders, checkpoint_facts
from desktop_app.backend.local.checkpoint_facts import DEFAULT_ARCHITECTURE, CheckpointFacts, Header
from desktop_app.core import paths
from desktop_app.core.model_choices import remembered_prediction
from desktop_app.core.models import AddOnInfo, ModelInfo, ModelLoadError

MODEL_SUFFIXES = app_folders.MODEL_SUFFIXES
MAX_DEPTH = 3  # a model folder's files, and those of its sub-folders to this depth ("Lora/styles/x")
# A file's kind from the folder it is in, the way the apps name their folders; else from its suffix.
FOLDER_KINDS = {"lora": "lora", "loras": "lora", "lycoris": "lora", "vae": "vae", "embeddings": "embedding",
                "embedding": "embedding", "textual_inversion": "embedding", "stable-diffusion": "checkpoint",
                "checkpoints": "checkpoint"}
_DOWN = re.compile(r"^first_stage_model\.encoder\.down\.(\d+)\.")
_INPUT_BLOCK = re.compile(r"^model\.diffusion_model\.input_blocks\.(\d+)\.")


def guess_kind(path: Path) -> str:
    """What a file found in a model folder is meant to be, before its header says (pickles never say)."""
    for parent in path.parents[:2]:
        kind = FOLDER_KINDS.get(parent.name.lower())
        if kind:
            return kind
    if path.name.lower().endswith((".vae.pt", ".vae.ckpt", ".vae.safetensors")):
        return "vae"
    return "embedding" if path.suffix.lower() in (".pt", ".bin") else "checkpoint"


def model_files(root: Path) -> Iterator[Path]:
    """Model files below ``root`` (links followed, each real folder once), never inside a diffusers
    folder (its components' weights are not models of their own) or a hidden folder."""
    visited: set[tuple[int, int]] = set()
    base = len(Path(root).parts)
    for current, dirs, files in os.walk(root, followlinks=True):
        try:
            stat = os.stat(current)
        except OSError:
            dirs[:] = []
            continue
        here = Path(current)
        if (stat.st_dev, stat.st_ino) in visited or "model_index.json" in files:
            dirs[:] = []
            continue
        visited.add((stat.st_dev, stat.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if len(here.parts) - base < MAX_DEPTH else []
        for name in sorted(files):
            if name.lower().endswith(MODEL_SUFFIXES) and not name.startswith("."):
                yield here / name


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the real file: one file linked into several folders is one model."""
    try:
        stat = os.stat(os.path.realpath(path))
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _stamp(path: Path) -> tuple[str, int, int]:
    real = os.path.realpath(path)
    stat = os.stat(real)
    return real, stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=4096)
def _described(stamp: tuple[str, int, int], path: str, folder_kind: str) -> app_folders.FoundModel:
    return app_folders.describe(Path(path), folder_kind)


def describe(path: Path, folder_kind: str | None = None) -> app_folders.FoundModel:
    """Kind, family and problem of one file (from its header; kept while the file is unchanged)."""
    path = Path(path)
    try:
        stamp = _stamp(path)
    except OSError as exc:
        return app_folders.FoundModel(path, folder_kind or "checkpoint", None, error=f"cannot be read ({exc.strerror or exc})")
    folder_kind = folder_kind or guess_kind(path)
    found = _described(stamp, str(path), folder_kind)
    if found.variant == "pickle":  # converted before (on first use): its copy tells what it is
        copy = converted_copy(path)
        if copy is not None:
            facts = _described(_stamp(copy), str(copy), folder_kind)
            found = dataclasses.replace(facts, path=path, size=found.size, error=facts.error)
    return found


def converted_copy(path: Path) -> Path | None:
    """The ``.safetensors`` copy of a pickled file, if ``pickles`` made one already (same key)."""
    import hashlib

    try:
        real, size, mtime = _stamp(path)
    except OSError:
        return None
    key = hashlib.sha256(f"{real}|{size}|{mtime}".encode()).hexdigest()[:16]
    copy = paths.cache_dir() / "converted" / f"{Path(real).stem}-{key}.safetensors"
    return copy if copy.is_file() else None


@lru_cache(maxsize=1024)
def _header_and_facts(stamp: tuple[str, int, int], path: str) -> tuple[Header, CheckpointFacts]:
    source = Path(path)
    if source.suffix.lower() in checkpoint_facts.PICKLE_SUFFIXES:
        copy = converted_copy(source)
        if copy is None:
            raise ModelLoadError(source, "is a pickle that has not been read yet")
        header = checkpoint_facts.read_header(copy)
        header = Header(source, header.shapes, header.dtypes, header.metadata, header.data_start)
    else:
        header = checkpoint_facts.read_header(source)
    return header, checkpoint_facts.checkpoint_facts(header)


def header_and_facts(path: Path) -> tuple[Header, CheckpointFacts]:
    """The header and checkpoint facts of a file; ModelLoadError names what is wrong with it."""
    try:
        stamp = _stamp(path)
    except OSError as exc:
        raise ModelLoadError(path, f"cannot be read ({exc.strerror or exc})") from None
    return _header_and_facts(stamp, str(path))


# ---- which shipped architecture a checkpoint looks like (torch-free) ---------------------------------------


@lru_cache(maxsize=64)
def _config(arch: str, component: str) -> dict:
    file = paths.resource_path("architectures", arch, component, "config.json")
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}


@lru_cache(maxsize=1)
def _architectures() -> dict[str, str]:
    """Each shipped architecture and its layout ("SD 1.x", "SD 2.x", "SDXL", "SDXL refiner")."""
    root = paths.resource_path("architectures")
    found = {}
    for folder in sorted(p for p in root.iterdir() if (p / "model_index.json").is_file()):
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        if index["_class_name"].startswith("StableDiffusionXL"):
            found[folder.name] = "SDXL" if (index.get("text_encoder") or [None])[0] else "SDXL refiner"
        else:
            found[folder.name] = "SD 1.x" if _config(folder.name, "text_encoder").get("hidden_act") == "quick_gelu" else "SD 2.x"
    return found


def _input_blocks(unet: dict) -> int:
    blocks = len(unet.get("block_out_channels", ()))
    layers = unet.get("layers_per_block", 2)
    return 1 + layers * blocks + blocks - 1


def likely_architecture(header: Header, facts: CheckpointFacts) -> str:
    """The shipped architecture of the file's layout whose stated widths and block counts agree best
    with the header (the exact match is the loader's); ties go to the real-size one."""
    shapes = header.shapes
    first_conv = shapes.get("model.diffusion_model.input_blocks.0.0.weight", (0,))[0]
    inputs = 1 + max((int(m.group(1)) for k in shapes if (m := _INPUT_BLOCK.match(k))), default=-1)
    vae_in = shapes.get("first_stage_model.encoder.conv_in.weight", (0,))[0]
    vae_blocks = 1 + max((int(m.group(1)) for k in shapes if (m := _DOWN.match(k))), default=-1)
    default = DEFAULT_ARCHITECTURE[facts.layout]
    best, best_score = default, -1
    for arch, layout in _architectures().items():
        if layout != facts.layout:
            continue
        unet, vae = _config(arch, "unet"), _config(arch, "vae")
        score = sum((
            unet.get("block_out_channels", [0])[0] == first_conv,
            unet.get("cross_attention_dim") == facts.cross_attention_width,
            _input_blocks(unet) == inputs,
            not facts.has_vae or vae.get("block_out_channels", [0])[0] == vae_in,
            not facts.has_vae or len(vae.get("block_out_channels", ())) == vae_blocks,
        ))
        if score > best_score or (score == best_score and arch == default):
            best, best_score = arch, score
    return best


def checkpoint_info(path: Path, model_id: str, *, source: str = "", name: str | None = None) -> ModelInfo:
    """The ``ModelInfo`` of a checkpoint file, from its header (and the user's ε/v answer for an SD
    2.x file that does not say); raises ModelLoadError naming the file."""
    from desktop_app.backend.local.discovery import SD1_PREVIEW, SDXL_PREVIEW

    path = Path(path)
    header, facts = header_and_facts(path)
    if facts.kind == "instruct-pix2pix":
        checkpoint_facts.require_kind(facts, "txt2img")
    prediction = facts.prediction if facts.prediction != "unknown" else remembered_prediction(path)
    info = checkpoint_facts.model_info(facts, model_id, name or path.stem, prediction)
    arch = likely_architecture(header, facts)
    if arch != DEFAULT_ARCHITECTURE[facts.layout]:  # a smaller (test) architecture: its own sizes
        unet, vae = _config(arch, "unet"), _config(arch, "vae")
        factor = 2 ** (len(vae.get("block_out_channels", [0])) - 1)
        side = int(unet.get("sample_size", 64)) * factor
        scheduler = json.loads(paths.resource_path("architectures", arch, "scheduler", "scheduler_config.json")
                               .read_text(encoding="utf-8"))
        if prediction:
            scheduler["prediction_type"] = prediction
        info = dataclasses.replace(info, native_size=(side, side), latent_factor=factor,
                                   latent_channels=int(vae.get("latent_channels", 4)), scheduler_config=scheduler)
    size = path.stat().st_size
    return dataclasses.replace(info, preview_factors=SDXL_PREVIEW if facts.family == "SDXL" else SD1_PREVIEW,
                               source=source, size=size)


def add_on_info(found: app_folders.FoundModel, source: str = "") -> AddOnInfo:
    return AddOnInfo(found.kind, Path(found.path).stem, found.family, Path(found.path), found.size, found.variant,
                     source or (found.sources[0] if found.sources else ""))


def needs_vae(info: ModelInfo) -> bool:
    """A checkpoint file without a VAE inside (it needs a VAE file to make pictures)."""
    if not Path(info.path).is_file():
        return False
    try:
        return not header_and_facts(Path(info.path))[1].has_vae
    except ModelLoadError:
        return False
