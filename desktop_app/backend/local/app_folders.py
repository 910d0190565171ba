"""Other apps' model folders, read in place and never written: AUTOMATIC1111 / Forge, ComfyUI (with its
``extra_model_paths.yaml``), InvokeAI (its ``invokeai.yaml`` and model database) and the Hugging Face
cache. Torch-free: only directory listings, safetensors headers and small text files are read.

- ``detect_app(root)`` says which app a folder belongs to (MODELS.md's markers) and
  ``candidate_roots()`` offers the usual places that exist, for the first start (both in
  ``core.app_roots``, where the window asks them too);
- ``scan_roots(roots)`` lists checkpoints, diffusers folders, VAEs, LoRAs and embeddings, each with
  its kind and family from its header, deduplicated by (device, inode) after resolving links, so a
  folder linked into two apps shows once; a root that is not there (an unplugged drive) comes back
  in ``offline``, so the settings keep it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app.backend.local import add_on_facts, checkpoint_facts
from desktop_app.core.app_roots import AppRoot, candidate_roots, detect_app, hf_cache_dir  # noqa: F401 (re-exported)
from desktop_app.core.models import ModelLoadError

MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
A1111_FOLDERS = {"checkpoint": ("models/Stable-diffusion",), "vae": ("models/VAE",),
                 "lora": ("models/Lora", "models/LyCORIS"), "embedding": ("embeddings",)}
COMFY_FOLDERS = {"checkpoint": ("models/checkpoints",), "diffusers": ("models/diffusers",), "vae": ("models/vae",),
                 "lora": ("models/loras",), "embedding": ("models/embeddings",)}
COMFY_KEYS = {"checkpoints": "checkpoint", "diffusers": "diffusers", "vae": "vae", "loras": "lora",
              "embeddings": "embedding"}
INVOKE_BASES = {"sd-1": "SD 1.x", "sd-2": "SD 2.x", "sdxl": "SDXL", "sdxl-refiner": "SDXL"}
INVOKE_TYPES = {"main": "checkpoint", "lora": "lora", "vae": "vae", "embedding": "embedding"}


@dataclass(frozen=True)
class FoundModel:
    path: Path
    kind: str  # "checkpoint" | "diffusers" | "vae" | "lora" | "embedding" | "unsupported"
    family: str | None
    variant: str = ""  # checkpoints: txt2img / inpaint / instruct-pix2pix / refiner; LoRAs: lora / locon / …
    size: int = 0
    sources: tuple[str, ...] = ()  # "ComfyUI /home/me/ComfyUI", one per app that lists the file
    error: str | None = None  # the one-line problem, when the file cannot be used


@dataclass
class Listing:
    models: list[FoundModel] = field(default_factory=list)
    offline: list[AppRoot] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[FoundModel]:
        return [m for m in self.models if m.kind == kind]


# ---- where each app keeps what --------------------------------------------------------------------------


def comfy_extra_paths(yaml_file: Path) -> dict[str, list[Path]]:
    """Category → folders from ComfyUI's ``extra_model_paths.yaml``: each section has a ``base_path``
    (``~`` and variables expanded, relative to the YAML's folder) and category keys holding
    newline-separated sub-paths."""
    import yaml

    try:
        data = yaml.safe_load(yaml_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    found: dict[str, list[Path]] = {}
    for section in data.values() if isinstance(data, dict) else []:
        if not isinstance(section, dict):
            continue
        base = Path(os.path.expandvars(os.path.expanduser(str(section.get("base_path", "")))))
        if not base.is_absolute():
            base = yaml_file.parent / base
        for key, value in section.items():
            kind = COMFY_KEYS.get(str(key))
            if kind is None or value is None:
                continue
            for line in str(value).splitlines():
                line = line.strip()
                if line:
                    sub = Path(os.path.expandvars(os.path.expanduser(line)))
                    found.setdefault(kind, []).append(sub if sub.is_absolute() else base / sub)
    return found


def _yaml(file: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, yaml.YAMLError):
        return {}


def _invoke_setting(config: dict, name: str, default: str) -> str:
    """A setting of ``invokeai.yaml``: top level (InvokeAI 4) or nested in sections (InvokeAI 3)."""
    if name in config and config[name] is not None:
        return str(config[name])
    for value in config.values():
        if isinstance(value, dict):
            found = _invoke_setting(value, name, "")
            if found:
                return found
    return default


def invokeai_records(root: Path) -> list[tuple[Path, str, str | None, str | None]]:
    """(path, kind, family, sha256 or None) from InvokeAI's model database, opened read-only."""
    config = _yaml(root / "invokeai.yaml")
    models_dir = Path(_invoke_setting(config, "models_dir", "models"))
    models_dir = models_dir if models_dir.is_absolute() else root / models_dir
    db_dir = Path(_invoke_setting(config, "db_dir", "databases"))
    database = (db_dir if db_dir.is_absolute() else root / db_dir) / "invokeai.db"
    if not database.is_file():
        return []
    found = []
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            rows = connection.execute("SELECT config FROM models").fetchall()
    except sqlite3.Error:
        return []
    for (raw,) in rows:
        try:
            config_row = json.loads(raw)
        except (TypeError, ValueError):
            continue
        kind = INVOKE_TYPES.get(config_row.get("type"))
        if kind is None or not config_row.get("path"):
            continue
        path = Path(config_row["path"])
        path = path if path.is_absolute() else models_dir / path
        if kind == "checkpoint" and path.is_dir():
            kind = "diffusers"
        sha = str(config_row.get("hash") or "")
        found.append((path, kind, INVOKE_BASES.get(config_row.get("base")), sha.split(":")[-1] or None))
    return found


def app_folders(root: AppRoot) -> dict[str, list[Path]]:
    """Category → folders for one app root (InvokeAI's and the HF cache's come from elsewhere)."""
    base = Path(root.path)
    if root.app in ("AUTOMATIC1111", "Forge"):
        return {kind: [base / sub for sub in subs] for kind, subs in A1111_FOLDERS.items()}
    if root.app == "ComfyUI":
        folders = {kind: [base / sub for sub in subs] for kind, subs in COMFY_FOLDERS.items()}
        for kind, extra in comfy_extra_paths(base / "extra_model_paths.yaml").items():
            folders.setdefault(kind, []).extend(extra)
        return folders
    return {}


def hf_snapshots(cache: Path) -> list[Path]:
    """The diffusers folders in a Hugging Face cache: each repo's snapshot that ``refs/main`` names
    (else its newest), when it holds a ``model_index.json``."""
    found = []
    for repo in sorted(cache.glob("models--*")):
        snapshots = repo / "snapshots"
        ref = repo / "refs" / "main"
        chosen = None
        try:
            if ref.is_file():
                chosen = snapshots / ref.read_text(encoding="utf-8").strip()
            elif snapshots.is_dir():
                chosen = max(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, default=None)
        except OSError:
            continue
        if chosen is not None and (chosen / "model_index.json").is_file():
            found.append(chosen)
    return found


# ---- describing one file -----------------------------------------------------------------------------------


def describe(path: Path, folder_kind: str) -> FoundModel:
    """Kind and family of one file, from its header when it has one (the folder only suggests)."""
    size = path.stat().st_size if path.is_file() else 0
    if folder_kind == "diffusers" or path.is_dir():
        return FoundModel(path, "diffusers", _folder_family(path), size=size)
    fmt = checkpoint_facts.sniff(path)
    problem = checkpoint_facts.format_problem(path, fmt)
    if problem:
        return FoundModel(path, folder_kind, None, size=size, error=problem.problem)
    if fmt != "safetensors":
        return FoundModel(path, folder_kind, None, "pickle", size)  # family known after the safe conversion
    try:
        header = checkpoint_facts.read_header(path)
        role = checkpoint_facts.identify(header)
        if role.role == "checkpoint":
            facts = checkpoint_facts.checkpoint_facts(header)
            return FoundModel(path, "checkpoint", facts.family, facts.kind, size)
        if role.role == "lora":
            return FoundModel(path, "lora", add_on_facts.lora_facts(header).family, role.detail, size)
        if role.role == "embedding":
            found = add_on_facts.embedding_facts_from_shapes(path, header.shapes)
            return FoundModel(path, "embedding", found.family, size=size)
        if role.role == "vae":
            return FoundModel(path, "vae", add_on_facts.vae_family_hint(path, header.metadata), role.detail, size)
        raise checkpoint_facts.unsupported_error(path, role)
    except ModelLoadError as exc:
        return FoundModel(path, folder_kind if folder_kind != "checkpoint" else "unsupported", None, size=size,
                          error=exc.problem)


def _folder_family(folder: Path) -> str | None:
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = str(index.get("_class_name", ""))
    if name.startswith("StableDiffusionXL"):
        return "SDXL"
    if name.startswith("StableDiffusion"):
        try:
            text = json.loads((folder / "text_encoder" / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return "SD 1.x" if text.get("hidden_act") == "quick_gelu" else "SD 2.x"
    return None


# ---- scanning ---------------------------------------------------------------------------------------------


def _files(folder: Path, kind: str) -> Iterable[Path]:
    """Model files below ``folder`` (links followed, each real folder once); diffusers folders whole."""
    visited: set[tuple[int, int]] = set()
    for current, dirs, files in os.walk(folder, followlinks=True):
        try:
            stat = os.stat(current)
        except OSError:
            dirs[:] = []
            continue
        if (stat.st_dev, stat.st_ino) in visited:
            dirs[:] = []
            continue
        visited.add((stat.st_dev, stat.st_ino))
        here = Path(current)
        if kind == "diffusers" and "model_index.json" in files:
            dirs[:] = []
            yield here
            continue
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(MODEL_SUFFIXES) and kind != "diffusers":
                yield here / name


def scan_roots(roots: Iterable[AppRoot]) -> Listing:
    """Everything the roots hold, each real file once (its first path; every app that lists it)."""
    listing = Listing()
    by_identity: dict[tuple[int, int], int] = {}

    def add(path: Path, kind: str, source: str, family: str | None = None) -> None:
        try:
            stat = os.stat(os.path.realpath(path))
        except OSError:
            return
        identity = (stat.st_dev, stat.st_ino)
        if identity in by_identity:
            index = by_identity[identity]
            found = listing.models[index]
            if source not in found.sources:
                listing.models[index] = FoundModel(**{**found.__dict__, "sources": (*found.sources, source)})
            return
        found = describe(path, kind)
        if found.family is None and family:
            found = FoundModel(**{**found.__dict__, "family": family})
        by_identity[identity] = len(listing.models)
        listing.models.append(FoundModel(**{**found.__dict__, "sources": (source,)}))

    for root in roots:
        source = f"{root.app} {root.path}"
        if not Path(root.path).is_dir():
            listing.offline.append(root)
            continue
        if root.app == "InvokeAI":
            for path, kind, family, _sha in invokeai_records(Path(root.path)):
                add(path, kind, source, family)
            continue
        if root.app == "Hugging Face cache":
            for snapshot in hf_snapshots(Path(root.path)):
                add(snapshot, "diffusers", source)
            continue
        for kind, folders in app_folders(root).items():
            for folder in folders:
                if folder.is_dir():
                    for path in _files(folder, kind):
                        add(path, kind, source)
    return listing
