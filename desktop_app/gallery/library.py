"""``Library``: the one path from a generated image to a file on disk and a row in the index.

The window and the command line hand every ``GeneratedImage`` to ``Library.save``: it writes the
PNG atomically (``save.save_png``) and, when the library has an index, adds the row from the
metadata it just wrote (the file is not read back). A backend that was still hashing the model
when the image was saved reports the hash later (``fill_model_hash``): the library then writes it
into the images it saved without one and updates their rows.

A picture made from another (image to image, inpainting) keeps its init picture and mask: they
are copied into the hidden ``.sources`` folder of the library's folder, named by their content's
hash (one copy however many pictures start from it), and the recipe saved in the image points at
the copies, so it can be run again after the originals are gone. The scan never lists them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image

from desktop_app.core.events import GeneratedImage
from desktop_app.core.files import replace_file
from desktop_app.gallery.metadata import metadata_from_chunks
from desktop_app.gallery.save import build_metadata, encode_png, save_png, write_atomically
from desktop_app.gallery.store import GalleryStore

log = logging.getLogger(__name__)
MAX_PENDING_HASHES = 256  # images remembered while their model's hash is being computed
SOURCES_FOLDER = ".sources"  # hidden: the kept init pictures and masks are not gallery images


@dataclass(frozen=True)
class SavedImage:
    path: Path
    image_id: int | None  # its row in the index (None: saved without an index, or the row failed)


@dataclass
class _Pending:
    path: Path
    item: GeneratedImage
    when: datetime
    stat: tuple[int, int]  # size, mtime_ns as written


class Library:
    def __init__(self, output_dir: Path | str, store: GalleryStore | None = None, *, dated: bool = True):
        self.output_dir = Path(output_dir)  # may change between saves (Settings)
        self.store = store
        self.dated = dated  # the app's pictures folder has date subfolders; a command line's --out does not
        self._lock = threading.Lock()
        self._pending: deque[_Pending] = deque(maxlen=MAX_PENDING_HASHES)

    def save(self, item: GeneratedImage, output_dir: Path | str | None = None) -> SavedImage:
        """Write ``item`` below ``output_dir`` (default: the library's) and index it.

        Raises ``SaveError``/``DiskFullError`` (``OSError``) when the file could not be written; an
        index failure is logged and leaves the file (the next scan finds it).
        """
        root = Path(output_dir) if output_dir is not None else self.output_dir
        when = datetime.now().astimezone()
        folder = root / f"{when:%Y-%m-%d}" if self.dated else root
        item = self._with_kept_sources(item, root)
        path, chunks = save_png(item, folder, when=when)
        if not item.model_hash and item.model is not None:
            stat = path.stat()
            with self._lock:
                self._pending.append(_Pending(path, item, when, (stat.st_size, stat.st_mtime_ns)))
        return SavedImage(path, self._index(path, chunks, item, root))

    # ---- the pictures a recipe starts from ------------------------------------------------------
    def sources_dir(self, root: Path | str | None = None) -> Path:
        return Path(root if root is not None else self.output_dir) / SOURCES_FOLDER

    def keep_file(self, path: Path | str, root: Path | str | None = None) -> Path:
        """A copy of ``path`` in the sources folder, named by its content (raises OSError)."""
        data = Path(path).read_bytes()
        return self._keep_bytes(data, Path(path).suffix.lower() or ".png", root)

    def keep_picture(self, picture: Image.Image, root: Path | str | None = None) -> Path:
        """``picture`` as a PNG in the sources folder (the window's painted masks, canvas pictures)."""
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return self._keep_bytes(buffer.getvalue(), ".png", root)

    def _keep_bytes(self, data: bytes, suffix: str, root: Path | str | None) -> Path:
        folder = self.sources_dir(root)
        name = hashlib.sha256(data).hexdigest()[:24] + suffix
        target = folder / name
        if target.is_file() and target.stat().st_size == len(data):
            return target
        return write_atomically(data, folder, name)

    def _with_kept_sources(self, item: GeneratedImage, root: Path) -> GeneratedImage:
        """``item`` with its recipe pointing at kept copies of its init picture and mask."""
        source = item.recipe.source
        if source is None:
            return item
        folder = self.sources_dir(root)
        kept = {}
        for name in ("image", "mask"):
            path = getattr(source, name)
            if not path or Path(path).parent == folder:
                continue
            try:
                kept[name] = str(self.keep_file(path, root))
            except OSError as exc:  # the recipe keeps the original path; the image itself is saved
                log.info("could not keep a copy of %s: %s", path, exc)
        if not kept:
            return item
        return dataclasses.replace(item, recipe=dataclasses.replace(item.recipe, source=dataclasses.replace(source, **kept)))

    def _index(self, path: Path, chunks: dict[str, str], item: GeneratedImage, root: Path) -> int | None:
        if self.store is None:
            return None
        try:
            self.store.add_root(root)
            return self.store.add_file(path, metadata_from_chunks(chunks, item.image.size))
        except Exception:  # the file is saved; the next scan will index it
            log.exception("could not add %s to the gallery index", path)
            return None

    def fill_model_hash(self, model_path: str, digest: str) -> list[Path]:
        """Write a model's hash, now known, into the images saved without it; returns their paths."""
        with self._lock:
            due = [p for p in self._pending if p.item.model is not None and str(p.item.model.path) == model_path]
            for pending in due:
                self._pending.remove(pending)
        done = []
        for pending in due:
            try:
                stat = pending.path.stat()
                if (stat.st_size, stat.st_mtime_ns) != pending.stat:
                    continue  # changed or replaced since: not ours to rewrite
                item = dataclasses.replace(pending.item, model_hash=digest)
                chunks = build_metadata(item, created=pending.when)
                replace_file(pending.path, encode_png(item.image, chunks))  # atomic; the file keeps its permissions
            except OSError as exc:
                log.info("could not add the model hash to %s: %s", pending.path, exc)
                continue
            root = pending.path.parent.parent if self.dated else pending.path.parent
            self._index(pending.path, chunks, item, root)
            done.append(pending.path)
        return done
