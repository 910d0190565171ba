"""A model's "Model hash", computed in the background, never while an image is being saved.

The hash is A1111's short form: the first 10 hex digits of the SHA-256 of the weights file (for a
diffusers folder, the UNet's file). Hashing a multi-GB file takes seconds, so it starts on a
thread of its own when a model is first loaded; until it is done, images carry "" and the saver is
told later (``on_done``). Results are cached in memory and on disk, keyed by the file's path, size
and modification time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from desktop_app.core import paths
from desktop_app.core.models import ModelInfo

log = logging.getLogger(__name__)
CACHE_NAME = "model_hashes.json"


def weights_file(model: ModelInfo) -> Path | None:
    """The file whose hash identifies ``model``: a single-file checkpoint, or a folder's UNet weights."""
    path = Path(model.path)
    if path.is_file():
        return path
    unet = path / "unet"
    files = sorted(unet.glob("*.safetensors")) or sorted(unet.glob("*.bin"))
    return files[0] if files else None


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ModelHasher:
    def __init__(self, on_done: Callable[[ModelInfo, str], None] | None = None):
        self.on_done = on_done
        self._lock = threading.Lock()
        self._memory: dict[str, str] = {}
        self._disk: dict[str, str] | None = None
        self._queue: list[tuple[ModelInfo, Path, str]] = []
        self._worker: threading.Thread | None = None

    @staticmethod
    def _key(file: Path) -> str | None:
        try:
            stat = file.stat()
        except OSError:
            return None
        return f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"

    def _cache_file(self) -> Path:
        return paths.cache_dir() / CACHE_NAME

    def _load_disk(self) -> dict[str, str]:
        if self._disk is None:
            try:
                data = json.loads(self._cache_file().read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            self._disk = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}
        return self._disk

    def known(self, model: ModelInfo | None) -> str:
        """The hash if it is known already (a stat and a lookup), else ""."""
        file = weights_file(model) if model is not None else None
        key = self._key(file) if file is not None else None
        if key is None:
            return ""
        with self._lock:
            return self._memory.get(key) or self._load_disk().get(key, "")

    def request(self, model: ModelInfo) -> None:
        """Start hashing ``model`` in the background unless its hash is known or under way."""
        file = weights_file(model)
        key = self._key(file) if file is not None else None
        if key is None:
            return
        with self._lock:
            if self._memory.get(key) or self._load_disk().get(key):
                self._memory[key] = self._memory.get(key) or self._disk[key]
                return
            if any(k == key for _, _, k in self._queue):
                return
            self._queue.append((model, file, key))
            if self._worker is None or not self._worker.is_alive():
                # a daemon: killed at exit it loses only a hash (the cache is written by rename, never half)
                self._worker = threading.Thread(target=self._work, name="model-hash", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._worker = None
                    return
                model, file, key = self._queue[0]
            try:
                digest = sha256_file(file)[:10]
            except OSError as exc:
                log.info("could not hash %s: %s", file, exc)
                digest = ""
            with self._lock:
                self._queue.pop(0)
                if digest:
                    self._memory[key] = digest
                    self._save(key, digest)
            if digest and self.on_done is not None:
                self.on_done(model, digest)

    def _save(self, key: str, digest: str) -> None:
        disk = self._load_disk()
        disk[key] = digest
        target = self._cache_file()
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            temp.write_text(json.dumps(disk, indent=0), encoding="utf-8")
            os.replace(temp, target)
        except OSError as exc:
            log.info("could not write the model hash cache %s: %s", target, exc)

    def wait(self, timeout: float | None = None) -> None:
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    close = wait
