"""Thumbnails on disk, and a memory cache bounded by bytes. No Qt here: the GUI wraps these.

A thumbnail is a JPEG in ``cache_dir()/thumbnails``, named by a hash of the image's path, size
and modification time, so an image changed on disk gets a new thumbnail and an old one is never
shown for it. Making one takes a few milliseconds, so the GUI does it on a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from PIL import Image, ImageOps

from desktop_app.core import paths
from desktop_app.core.files import replace_file

THUMBNAIL_SIZE = 256
K = TypeVar("K")
V = TypeVar("V")


def thumbnail_dir() -> Path:
    folder = paths.cache_dir() / "thumbnails"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def thumbnail_file(image: Path, size: int = THUMBNAIL_SIZE) -> Path:
    stat = image.stat()
    key = f"{image.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{size}".encode()
    digest = hashlib.sha1(key, usedforsecurity=False).hexdigest()
    return thumbnail_dir() / digest[:2] / f"{digest}.jpg"


def make_thumbnail(image: Path | str, size: int = THUMBNAIL_SIZE) -> Path:
    """The cached thumbnail of ``image`` (made now if needed); raises OSError if unreadable."""
    image = Path(image)
    target = thumbnail_file(image, size)
    if target.exists():
        try:
            os.utime(target)  # recently used: pruning keeps it
        except OSError:
            pass
        return target
    with Image.open(image) as source:
        source.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
        thumb = ImageOps.exif_transpose(source)
        thumb.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        if thumb.mode in ("RGBA", "LA", "P"):
            thumb = thumb.convert("RGBA")
            background = Image.new("RGB", thumb.size, (40, 40, 40))
            background.paste(thumb, mask=thumb.getchannel("A"))
            thumb = background
        elif thumb.mode != "RGB":
            thumb = thumb.convert("RGB")
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=85)
    replace_file(target, buffer.getvalue(), keep_mode=False)  # atomic, with the umask's permissions
    return target


DISK_CACHE_BYTES = 512 * 1024 * 1024


def prune_thumbnails(max_bytes: int = DISK_CACHE_BYTES) -> int:
    """Keep the thumbnail folder under ``max_bytes``: remove the least recently made/used first.

    Returns how many files were removed. Every read of a thumbnail touches it (see
    ``make_thumbnail``), so what the user looks at stays.
    """
    files = []
    for path in thumbnail_dir().rglob("*.jpg"):
        try:
            stat = path.stat()
        except OSError:
            continue
        files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    removed = 0
    for _, size, path in sorted(files):
        if total <= max_bytes:
            break
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        removed += 1
    return removed


class ByteBoundedLru(Generic[K, V]):
    """A least-recently-used cache that holds at most ``max_bytes`` (as ``size_of`` counts them)."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int]):
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.bytes = 0
        self.peak_bytes = 0

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V) -> None:
        size = self._size_of(value)
        if key in self._items:
            self.bytes -= self._items.pop(key)[1]
        self._items[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped
        self.peak_bytes = max(self.peak_bytes, self.bytes)

    def discard(self, key: K) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.bytes -= item[1]

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items
