"""Model identity as other tools write it: SHA-256 of model files, hashed in the background, cached.

- A1111's "Model hash" (civitai's "AutoV2") is the first 10 hex digits of the SHA-256 of the whole
  file (REFERENCE.md, MODELS.md). The same full-file hash, first 12 digits, is what A1111 writes for
  an embedding in "TI hashes" and for a VAE.
- A1111's "Lora hashes" use, for a ``.safetensors`` LoRA, the SHA-256 of the bytes after the
  safetensors header (MODELS.md; kohya's "AddNet" hash, unchanged when only the metadata is edited),
  first 12 hex digits; for other LoRA files the full-file hash. (The 12-digit length is A1111's
  "short hash" as its infotexts show it: not stated in MODELS.md or REFERENCE.md.)

Hashing a 2 GiB file takes seconds, a cold 6.5 GiB one on a hard disk most of a minute, so hashes are
computed by ``HashJob`` on a thread of its own with progress callbacks, and kept in the cache folder
keyed by real path, size and modification time. hashlib releases the GIL on large buffers: the
window stays responsive.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from desktop_app.core import paths

BLOCK = 4 * 1024 * 1024
MODEL_HASH_LENGTH = 10
SHORT_HASH_LENGTH = 12


@dataclass(frozen=True)
class HashProgress:
    path: Path
    done: int
    total: int
    sha256: str | None = None  # set on the last update


def body_start(path: Path) -> int:
    """Where a safetensors file's tensor bytes begin (8 + header length); 0 for other files."""
    if Path(path).suffix.lower() != ".safetensors":
        return 0
    with open(path, "rb") as fh:
        raw = fh.read(8)
    if len(raw) < 8:
        return 0
    (length,) = struct.unpack("<Q", raw)
    return 8 + length if 8 + length <= os.path.getsize(path) else 0


def iter_sha256(path: Path | str, start: int = 0, cancel: threading.Event | None = None) -> Iterator[HashProgress]:
    """Hash a file from byte ``start``, yielding progress after each block; the last update carries
    the digest. Stops without a digest when ``cancel`` is set."""
    path = Path(path)
    total = os.path.getsize(path) - start
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    done = 0
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        while True:
            if cancel is not None and cancel.is_set():
                return
            count = fh.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            done += count
            yield HashProgress(path, done, total)
    yield HashProgress(path, done, total, digest.hexdigest())


def sha256_of(path: Path | str, start: int = 0) -> str:
    """The SHA-256 of a file from byte ``start``, on this thread."""
    (last,) = deque(iter_sha256(path, start), maxlen=1)
    return last.sha256


def model_hash(sha256: str) -> str:
    """A1111's "Model hash" from a file's SHA-256."""
    return sha256[:MODEL_HASH_LENGTH]


def short_hash(sha256: str) -> str:
    """The 12 hex digits A1111 writes in "Lora hashes" / "TI hashes"."""
    return sha256[:SHORT_HASH_LENGTH]


def hashes_text(named: dict[str, str]) -> str:
    """The value of A1111's "Lora hashes" / "TI hashes": ``name: hash, name: hash`` (full hashes in)."""
    return ", ".join(f"{name}: {short_hash(sha)}" for name, sha in named.items())


class HashCache:
    """SHA-256 digests by real path, size and mtime, in ``hashes.json`` of the cache folder.
    ``kind``: "file" (the whole file) or "body" (after a safetensors header: LoRA hashes)."""

    def __init__(self, file: Path | None = None):
        self.file = file or paths.cache_dir() / "hashes.json"
        self._lock = threading.Lock()

    @staticmethod
    def _key(path: Path) -> tuple[str, dict]:
        real = os.path.realpath(path)
        stat = os.stat(real)
        return real, {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def _read(self) -> dict:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def get(self, path: Path | str, kind: str = "file") -> str | None:
        try:
            real, stamp = self._key(Path(path))
        except OSError:
            return None
        with self._lock:
            entry = self._read().get(real)
        if not isinstance(entry, dict) or any(entry.get(k) != v for k, v in stamp.items()):
            return None
        return entry.get(kind)

    def known(self, items: Iterable[tuple[Path | str, str]]) -> dict[str, str]:
        """{str(path): digest} of those ``(path, kind)`` whose digest is kept and current (one read)."""
        with self._lock:
            data = self._read()
        found = {}
        for path, kind in items:
            try:
                real, stamp = self._key(Path(path))
            except OSError:
                continue
            entry = data.get(real)
            if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()) and entry.get(kind):
                found[str(path)] = entry[kind]
        return found

    def put(self, path: Path | str, kind: str, sha256: str) -> None:
        real, stamp = self._key(Path(path))
        with self._lock:
            data = self._read()
            entry = data.get(real) if isinstance(data.get(real), dict) else {}
            if any(entry.get(k) != v for k, v in stamp.items()):
                entry = {}
            data[real] = {**entry, **stamp, kind: sha256}
            partial = self.file.with_name(self.file.name + f".{threading.get_ident()}.partial")
            partial.write_text(json.dumps(data, indent=1), encoding="utf-8")
            partial.replace(self.file)


def hash_kind(path: Path, role: str) -> str:
    """ "body" for a safetensors LoRA (A1111's Lora hash), else "file"."""
    return "body" if role == "lora" and Path(path).suffix.lower() == ".safetensors" else "file"


def cached_or_compute(path: Path | str, kind: str = "file", cache: HashCache | None = None) -> str:
    """The digest of ``path`` now (computing it on this thread when the cache lacks it)."""
    cache = cache or HashCache()
    found = cache.get(path, kind)
    if found is None:
        found = sha256_of(path, body_start(Path(path)) if kind == "body" else 0)
        cache.put(path, kind, found)
    return found


class HashJob:
    """Hashes files on a thread of its own: ``on_progress(HashProgress)`` after each block,
    ``on_done(path, kind, sha256)`` per file, ``on_error(path, OSError)`` for a file that cannot be read,
    then ``on_finished(cancelled)`` exactly once. Callbacks run on the job's thread."""

    def __init__(self, items: Iterable[tuple[Path | str, str]], *, cache: HashCache | None = None,
                 on_progress: Callable[[HashProgress], None] | None = None,
                 on_done: Callable[[Path, str, str], None] | None = None,
                 on_error: Callable[[Path, OSError], None] | None = None,
                 on_finished: Callable[[bool], None] | None = None):
        self.items = [(Path(p), k) for p, k in items]
        self.cache = cache or HashCache()
        self.on_progress, self.on_done, self.on_error, self.on_finished = on_progress, on_done, on_error, on_finished
        self.results: dict[tuple[Path, str], str] = {}
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="diffuse-studio-hashing")

    def start(self) -> HashJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        cancelled = False
        try:
            for path, kind in self.items:
                if self._cancel.is_set():
                    break
                try:
                    sha = self._hash(path, kind)
                except OSError as exc:
                    if self.on_error:
                        self.on_error(path, exc)
                    continue
                if sha is None:
                    break
                self.results[(path, kind)] = sha
                if self.on_done:
                    self.on_done(path, kind, sha)
        finally:
            cancelled = self._cancel.is_set()
            if self.on_finished:
                self.on_finished(cancelled)

    def _hash(self, path: Path, kind: str) -> str | None:
        found = self.cache.get(path, kind)
        if found is not None:
            return found
        start = body_start(path) if kind == "body" else 0
        for update in iter_sha256(path, start, self._cancel):
            if self.on_progress:
                self.on_progress(update)
            if update.sha256 is not None:
                self.cache.put(path, kind, update.sha256)
                return update.sha256
        return None
