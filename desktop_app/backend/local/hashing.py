"""A model's "Model hash", computed in the background, never while an image is being saved.

The hash is A1111's (civitai's "AutoV2"): the first 10 hex digits of the SHA-256 of the checkpoint
file, what other tools write and civitai finds a model by. A diffusers folder has no such file, so
it has no model hash ("": the UNet-file hash this app wrote before matched nothing elsewhere; old
images keep theirs). Hashing a multi-GB file takes seconds, so it starts on a thread of its own when
a model is first loaded, with progress (``on_progress``); until it is done, images carry "" and the
saver is told later (``on_done``). Digests are kept in the cache folder by real path, size and
modification time (``hashes.HashCache``, shared with the LoRA and embedding hashes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from desktop_app.backend.local import hashes
from desktop_app.core.models import ModelInfo

log = logging.getLogger(__name__)
PROGRESS_EVERY = 0.25  # seconds between progress reports


def weights_file(model: ModelInfo) -> Path | None:
    """The file whose hash identifies ``model``: a single-file checkpoint; None for a folder."""
    path = Path(model.path)
    return path if path.is_file() else None


class ModelHasher:
    """``on_done(model, sha256)`` once per file; ``on_progress(model, done, total)`` while hashing."""

    def __init__(self, on_done: Callable[[ModelInfo, str], None] | None = None,
                 on_progress: Callable[[ModelInfo, int, int], None] | None = None,
                 cache: hashes.HashCache | None = None):
        self.on_done = on_done
        self.on_progress = on_progress
        self._cache = cache
        self._lock = threading.Lock()
        self._queue: list[tuple[ModelInfo, Path]] = []
        self._worker: threading.Thread | None = None
        self._cancel = threading.Event()

    @property
    def cache(self) -> hashes.HashCache:
        if self._cache is None:
            self._cache = hashes.HashCache()
        return self._cache

    def sha256(self, model: ModelInfo | None) -> str:
        """The file's whole SHA-256 if it is known already (a stat and a lookup), else ""."""
        file = weights_file(model) if model is not None else None
        return (self.cache.get(file) or "") if file is not None else ""

    def known(self, model: ModelInfo | None) -> str:
        """The model hash (10 hex digits) if it is known already, else ""."""
        sha = self.sha256(model)
        return hashes.model_hash(sha) if sha else ""

    def request(self, model: ModelInfo) -> None:
        """Start hashing ``model`` in the background unless its hash is known or under way."""
        file = weights_file(model)
        if file is None or self.cache.get(file) is not None:
            return
        with self._lock:
            if any(queued == file for _, queued in self._queue):
                return
            self._queue.append((model, file))
            if self._worker is None or not self._worker.is_alive():
                self._cancel.clear()  # closed before: a new request starts afresh
                # a daemon: killed at exit it loses only a hash (the cache is written by rename, never half)
                self._worker = threading.Thread(target=self._work, name="model-hash", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while not self._cancel.is_set():
            with self._lock:
                if not self._queue:
                    self._worker = None
                    return
                model, file = self._queue[0]
            sha = self._hash(model, file)
            with self._lock:
                self._queue.pop(0)
            if sha and self.on_done is not None:
                self.on_done(model, sha)
        with self._lock:
            self._worker = None

    def _hash(self, model: ModelInfo, file: Path) -> str:
        last = 0.0
        try:
            for update in hashes.iter_sha256(file, cancel=self._cancel):
                if update.sha256 is not None:
                    self.cache.put(file, "file", update.sha256)
                    return update.sha256
                now = time.monotonic()
                if self.on_progress is not None and now - last >= PROGRESS_EVERY:
                    last = now
                    self.on_progress(model, update.done, update.total)
        except OSError as exc:
            log.info("could not hash %s: %s", file, exc)
        return ""

    def wait(self, timeout: float | None = None) -> None:
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop hashing (a half-hashed file is started again next time) and wait for the thread."""
        self._cancel.set()
        self.wait(timeout)
        with self._lock:
            self._queue.clear()
