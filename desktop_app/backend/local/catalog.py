"""Putting the catalog together: model folders, single files and other apps' roots, each file once.

``discovery.discover`` drives a ``CatalogBuilder``: the app's own model folders (diffusers folders,
plus the checkpoint, LoRA, VAE and embedding files in them and their sub-folders) first, then the
roots of other apps (``app_folders.scan_roots``). Ids are a folder's name or a file's name without
its suffix (what A1111 writes as "Model"); a second model of the same name gets ``-2``, ``-3``… in
the order the folders are read, which does not change between runs. Torch-free.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from desktop_app.backend.local import app_folders, checkpoint_facts, hashes, model_files
from desktop_app.backend.local.app_folders import FoundModel
from desktop_app.core import paths
from desktop_app.core.models import AddOnInfo, ModelCatalog, ModelInfo, ModelLoadError

ADD_ON_KINDS = ("lora", "vae", "embedding")


def pickle_placeholder(path: Path, model_id: str, source: str = "") -> ModelInfo:
    """A pickled checkpoint not read yet (reading one safely means converting it, on first use): listed
    as an SD 1.x-sized model of unknown family; the engine reads it before the first job."""
    arch = paths.resource_path("architectures", "sd15")
    scheduler = json.loads((arch / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
    return ModelInfo(id=model_id, name=path.stem, path=path, family="unknown (not read yet)",
                     pipeline_class="StableDiffusionPipeline", native_size=(512, 512), latent_factor=8,
                     latent_channels=4, scheduler_config=scheduler, source=source, size=path.stat().st_size)


def file_model(path: Path, model_id: str, source: str = "") -> ModelInfo:
    """A checkpoint file as a model; ModelLoadError (naming the file) for anything else."""
    path = Path(path)
    found = model_files.describe(path, "checkpoint")
    if found.error:
        raise ModelLoadError(path, found.error)
    if found.variant == "pickle":
        return pickle_placeholder(path, model_id, source)
    if found.kind != "checkpoint":
        what = {"lora": "a LoRA", "vae": "a VAE", "embedding": "a textual-inversion embedding"}.get(found.kind)
        if what:
            raise ModelLoadError(path, f"is {what}, not a checkpoint; add it to a model instead")
    return model_files.checkpoint_info(path, model_id, source=source)


def listed_file(catalog: ModelCatalog, path: Path | str) -> ModelInfo | None:
    """The catalog's model for a checkpoint file given by its path (any link to it), if listed."""
    key = model_files.identity(Path(path))
    if key is None:
        return None
    return next((m for m in catalog.models if Path(m.path).is_file() and model_files.identity(Path(m.path)) == key), None)


class CatalogBuilder:
    def __init__(self) -> None:
        self.models: dict[str, ModelInfo] = {}
        self.errors: list[ModelLoadError] = []
        self.add_ons: list[AddOnInfo] = []
        self.offline: list[str] = []
        self._seen: set[tuple[int, int]] = set()

    def catalog(self) -> ModelCatalog:
        files = [(m.path, "file") for m in self.models.values() if Path(m.path).is_file()]
        files += [(a.path, hashes.hash_kind(a.path, a.kind)) for a in self.add_ons]
        try:
            known = hashes.HashCache().known(files) if files else {}
        except OSError:
            known = {}
        return ModelCatalog(list(self.models.values()), self.errors, self.add_ons, self.offline, known)

    def _first_time(self, path: Path) -> bool:
        key = model_files.identity(path)
        if key is None or key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _unique_id(self, wanted: str) -> str:
        if wanted not in self.models:
            return wanted
        n = 2
        while f"{wanted}-{n}" in self.models:
            n += 1
        return f"{wanted}-{n}"

    # ---- the app's own model folders ----------------------------------------------------------------
    def add_model_folder(self, root: Path, *, required: bool = False) -> None:
        from desktop_app.backend.local.discovery import (
            folder_size,
            inspect_model,
            looks_like_model_folder,
            model_folders,
        )

        root = Path(root)
        try:
            if not root.is_dir():
                if required:
                    self.offline.append(str(root))
                return
            candidates = model_folders(root)
        except OSError as exc:
            self.errors.append(ModelLoadError(root, f"cannot be read ({exc.strerror or exc})"))
            return
        source = f"folder {root}"
        for folder in candidates:
            if folder.name.startswith(".") or folder.name in self.models:
                continue
            try:
                if not looks_like_model_folder(folder):
                    continue  # an unrelated folder (or one of files: below), not a broken model
                if not self._first_time(folder):
                    continue
                info = inspect_model(folder)
                self.models[info.id] = dataclasses.replace(info, source=source, size=folder_size(folder))
            except ModelLoadError as exc:
                self.errors.append(exc)
            except OSError as exc:
                self.errors.append(ModelLoadError(folder, f"cannot be read ({exc.strerror or exc})"))
        try:
            for file in model_files.model_files(root):
                self.add_found(model_files.describe(file), source)
        except OSError as exc:
            self.errors.append(ModelLoadError(root, f"cannot be read ({exc.strerror or exc})"))

    # ---- other apps ---------------------------------------------------------------------------------
    def add_app_roots(self, roots: list[Path | str]) -> None:
        apps, plain = [], []
        for root in (Path(r).expanduser() for r in roots):
            try:
                app = app_folders.detect_app(root) if root.is_dir() else None
            except OSError:
                app = None
            if app is None and root.is_dir():
                plain.append(root)  # a folder of models of no known app: read as a model folder
            else:
                apps.append(app_folders.AppRoot(app or "folder", root))
        for root in plain:
            self.add_model_folder(root)
        listing = app_folders.scan_roots(apps)
        self.offline.extend(f"{r.app} {r.path}" if r.app != "folder" else str(r.path) for r in listing.offline)
        for found in listing.models:
            self.add_found(found, found.sources[0] if found.sources else "")

    # ---- one file or folder ------------------------------------------------------------------------------
    def add_found(self, found: FoundModel, source: str) -> None:
        """Add one described file (or an app's diffusers folder) unless it was listed already."""
        from desktop_app.backend.local.discovery import folder_size, inspect_model

        path = Path(found.path)
        if not self._first_time(path):
            return
        if found.error:
            self.errors.append(ModelLoadError(path, found.error))
            return
        try:
            if found.kind == "diffusers":
                info = inspect_model(path, self._unique_id(_folder_id(path)))
                self.models[info.id] = dataclasses.replace(info, source=source, size=folder_size(path))
            elif found.kind == "checkpoint":
                model_id = self._unique_id(path.stem)
                if found.variant == "pickle":
                    self.models[model_id] = pickle_placeholder(path, model_id, source)
                else:
                    self.models[model_id] = model_files.checkpoint_info(path, model_id, source=source)
            elif found.kind in ADD_ON_KINDS:
                self.add_ons.append(model_files.add_on_info(found, source))
            else:
                self.errors.append(checkpoint_facts.unsupported_error(path, checkpoint_facts.FileRole("unsupported")))
        except ModelLoadError as exc:
            self.errors.append(exc)
        except OSError as exc:
            self.errors.append(ModelLoadError(path, f"cannot be read ({exc.strerror or exc})"))


def _folder_id(folder: Path) -> str:
    """A Hugging Face cache snapshot by its repository ("org/name"); any other folder by its name."""
    for part in folder.parts:
        if part.startswith("models--"):
            return part[len("models--"):].replace("--", "/")
    return folder.name
