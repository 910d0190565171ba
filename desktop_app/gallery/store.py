"""The gallery index: an SQLite database over the image files.

Files are the truth. The index (``gallery.sqlite3`` in the user data folder, WAL mode) only makes
listing, filtering and full-text search (FTS5 over prompt, negative prompt and model) fast; it can
always be rebuilt from the files, and is rebuilt when it is missing or damaged (only then: a busy
or full database is reported as ``IndexUnavailable``, see ``index_file``). Paths are stored as
the file system's bytes, so any name is kept exactly; text from the files is stored as UTF-8. ``sync`` notices
images added, changed or deleted outside the app. The little state that is not in the files (the
folders to scan and the favourites) is mirrored in ``gallery-state.json`` next to the database,
so a rebuild keeps it.

A ``GalleryStore`` may be shared between threads: every call takes the store's lock, and a long
``sync`` commits and releases the lock every few hundred files.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from send2trash import send2trash

from desktop_app.core import paths
from desktop_app.core.files import replace_file
from desktop_app.core.text import storable
from desktop_app.gallery import index_file
from desktop_app.gallery.formats import DELETED_PREFIX
from desktop_app.gallery.index_file import IndexCorrupt, IndexUnavailable
from desktop_app.gallery.metadata import ImageMetadata, read_metadata
from desktop_app.gallery.scan import scan_images

log = logging.getLogger(__name__)

DB_NAME = "gallery.sqlite3"
STATE_NAME = "gallery-state.json"
_BATCH = 200
__all__ = ["GalleryStore", "ImageRecord", "IndexCorrupt", "IndexUnavailable", "Query", "SyncReport", "open_default_store"]


def _key(path: Path | str) -> bytes:
    """A path as the index stores it: the file system's own bytes."""
    return os.fsencode(str(path))


def _path_text(value: bytes | str) -> str:
    """A stored path back as Python's ``str`` for it (an older index stored text)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: Path
    created: float
    width: int
    height: int
    source: str
    prompt: str
    negative_prompt: str
    model_id: str
    model_name: str
    model_hash: str
    scheduler: str
    seed: int | None
    steps: int | None
    guidance_scale: float | None
    request: dict[str, Any]
    parameters: str
    problems: str
    favourite: bool

    def as_dict(self) -> dict[str, Any]:
        return {**self.request, "path": str(self.path), "created": self.created, "source": self.source,
                "model_hash": self.model_hash, "favourite": self.favourite,
                "width": self.width, "height": self.height}


_RECORD_COLUMNS = ("id, path, created, width, height, source, prompt, negative_prompt, model_id, model_name, "
                   "model_hash, scheduler, seed, steps, guidance_scale, request_json, parameters, problems, favourite")


def _record(row: tuple) -> ImageRecord:
    values = list(row)
    values[1] = Path(_path_text(values[1]))
    try:
        values[15] = json.loads(values[15])
    except ValueError:
        values[15] = {}
    values[18] = bool(values[18])
    return ImageRecord(*values)


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unreadable: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class Query:
    text: str = ""
    model_id: str = ""
    scheduler: str = ""
    favourites_only: bool = False


_SEARCHED = ("prompt", "negative_prompt", "model_id", "model_name")


def fts_query(text: str) -> str:
    """User words as an FTS5 query: every word must appear (as a prefix), quotes made harmless."""
    words = re.findall(r"\w+", text, flags=re.UNICODE)
    return " AND ".join(f'"{w}"*' for w in words)


def default_db_path() -> Path:
    return paths.data_dir() / DB_NAME


class GalleryStore:
    """The index over the images below a set of root folders (the output folders)."""

    def __init__(self, db_path: Path | None = None, roots: Iterable[Path] = (), *, check: bool = True,
                 busy_timeout: float | None = None):
        """Raises ``IndexUnavailable`` (an OSError with a message for the user) when the index cannot
        be opened now: busy, on a full disk, in a folder that cannot be written."""
        self.db_path = Path(db_path) if db_path is not None else default_db_path()
        self.state_path = self.db_path.with_name(STATE_NAME)
        self.recovered: str = ""  # why the index was rebuilt on open, "" when it was fine
        self.busy_timeout = index_file.BUSY_TIMEOUT if busy_timeout is None else busy_timeout
        self._lock = threading.RLock()
        self._state = self._load_state()
        self._db = self._open(check)
        for root in roots:
            self.add_root(root)

    # -- opening, schema, recovery ----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise index_file.unavailable(exc, self.db_path) from exc
        return index_file.connect(self.db_path, self.busy_timeout)

    def _open(self, check: bool) -> sqlite3.Connection:
        existed = self.db_path.exists()
        deadline = time.monotonic() + self.busy_timeout
        while True:
            db = None
            try:
                db = self._connect()
                index_file.configure(db)
                if check and existed:
                    index_file.check(db)
                index_file.migrate(db)
                return db
            except (sqlite3.DatabaseError, IndexCorrupt) as exc:
                if index_file.is_damage(exc):
                    return self._replace_damaged(exc, db)
                if db is not None:
                    db.close()
                # switching a new file to WAL, or a migration, can be refused at once while another
                # process does the same (SQLite does not wait there): try again until the timeout
                if index_file.is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise index_file.unavailable(exc, self.db_path) from exc

    def _replace_damaged(self, reason: Exception, damaged: sqlite3.Connection | None) -> sqlite3.Connection:
        """Move the damaged index aside (while it is still open: closing it first would let SQLite
        delete a WAL that may hold committed rows), then rebuild it from the files."""
        try:
            try:
                aside = index_file.set_aside(self.db_path)
            except OSError:
                if damaged is None:
                    raise
                damaged.close()  # where open files cannot be renamed (Windows)
                damaged = None
                aside = index_file.set_aside(self.db_path)
        except OSError as exc:
            raise index_file.unavailable(exc, self.db_path) from exc
        finally:
            if damaged is not None:
                damaged.close()
        log.warning("the gallery index %s is unusable (%s); moved to %s and rebuilding", self.db_path, reason, aside)
        self.recovered = f"the index was unusable ({reason}) and was rebuilt from the image files"
        with index_file.reported(self.db_path):
            db = self._connect()
            index_file.configure(db)
            index_file.migrate(db)
        self._db = db
        self.sync()
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> GalleryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, index_file.reported(self.db_path), self._db:
            yield self._db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, index_file.reported(self.db_path):
            yield self._db

    # -- side state (roots, favourites) -------------------------------------------------------

    def _load_state(self) -> dict[str, list[str]]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        state = state if isinstance(state, dict) else {}
        lists = {key: state.get(key) for key in ("roots", "favourites")}
        return {key: [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
                for key, value in lists.items()}

    def _save_state(self) -> None:
        try:  # ensure_ascii keeps a name that is not UTF-8 exactly ("\udcff")
            replace_file(self.state_path, json.dumps(self._state, indent=1).encode("ascii"))
        except OSError as exc:
            log.warning("could not save %s: %s", self.state_path, exc)

    @property
    def roots(self) -> list[Path]:
        return [Path(r) for r in self._state["roots"]]

    def add_root(self, root: Path | str) -> None:
        root = str(Path(root).expanduser().resolve())
        with self._lock:
            if root not in self._state["roots"]:
                self._state["roots"].append(root)
                self._save_state()

    # -- adding, scanning ------------------------------------------------------------------

    def add_file(self, path: Path | str, meta: ImageMetadata | None = None) -> int:
        """Index one image file (again, if it changed); returns its id."""
        path = Path(path).resolve()
        stat = path.stat()
        meta = meta if meta is not None else read_metadata(path)
        with self._write() as db:
            return self._upsert(db, path, stat, meta)

    def _upsert(self, db: sqlite3.Connection, path: Path, stat: os.stat_result, meta: ImageMetadata) -> int:
        request = meta.request
        created = _created(meta, stat)
        model = meta.info.get("model") if isinstance(meta.info.get("model"), dict) else {}
        favourite = int(str(path) in self._favourite_set())
        text = lambda value: storable(str(value))  # noqa: E731 - what a file holds may be half a character
        values = (
            _key(path), stat.st_mtime_ns, stat.st_size, created, meta.width, meta.height, text(meta.source),
            text(request.get("prompt", "")), text(request.get("negative_prompt", "")), text(request.get("model_id", "")),
            text(model.get("name", "")), text(model.get("hash", "") or meta.info.get("Model hash", "")),
            text(request.get("scheduler", "")), _int(request.get("seed")), _int(request.get("steps")),
            _float(request.get("guidance_scale")), json.dumps(request, default=str), text(meta.parameters),
            text("; ".join(meta.errors)), favourite,
        )
        db.execute(
            """INSERT INTO images (path, mtime_ns, size, created, width, height, source, prompt, negative_prompt,
                   model_id, model_name, model_hash, scheduler, seed, steps, guidance_scale, request_json,
                   parameters, problems, favourite)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (path) DO UPDATE SET mtime_ns = excluded.mtime_ns, size = excluded.size,
                   created = excluded.created, width = excluded.width, height = excluded.height,
                   source = excluded.source, prompt = excluded.prompt, negative_prompt = excluded.negative_prompt,
                   model_id = excluded.model_id, model_name = excluded.model_name, model_hash = excluded.model_hash,
                   scheduler = excluded.scheduler, seed = excluded.seed, steps = excluded.steps,
                   guidance_scale = excluded.guidance_scale, request_json = excluded.request_json,
                   parameters = excluded.parameters, problems = excluded.problems""",
            values,
        )
        return db.execute("SELECT id FROM images WHERE path = ?", (_key(path),)).fetchone()[0]

    def _favourite_set(self) -> set[str]:
        return set(self._state["favourites"])

    def sync(self, progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None) -> SyncReport:
        """Bring the index in line with the files: add new images, re-read changed ones, drop gone ones.

        Commits every few hundred files, so the window sees a long sync's progress. Raises
        ``IndexUnavailable`` when the index cannot be written (busy, disk full)."""
        started = time.perf_counter()
        report = SyncReport()
        self._sync_roots(report, progress, cancel, self._write)
        report.seconds = time.perf_counter() - started
        return report

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> SyncReport:
        """Forget the index and read every image file again, in one transaction: an error, a full
        disk or Ctrl+C on the way leaves the old index exactly as it was."""
        started = time.perf_counter()
        report = SyncReport()
        with self._write() as db:
            db.execute("DELETE FROM images")
            db.execute("INSERT INTO images_fts (images_fts) VALUES ('rebuild')")
            self._sync_roots(report, progress, None, lambda: nullcontext(db))
        report.seconds = time.perf_counter() - started
        return report

    def _sync_roots(self, report: SyncReport, progress: Callable[[int, int], None] | None,
                    cancel: threading.Event | None, batch: Callable[[], AbstractContextManager[sqlite3.Connection]]) -> None:
        for root in self.roots:
            if not root.is_dir():
                continue  # an unplugged drive: keep its images listed rather than forget them
            on_disk = dict(scan_images(root))
            prefix = _key(str(root) + os.sep)
            with self._read() as db:
                known = {_path_text(p): (m, s) for p, m, s in db.execute(
                    "SELECT path, mtime_ns, size FROM images WHERE substr(path, 1, ?) = ?", (len(prefix), prefix))}
            gone = [p for p in known if p not in on_disk]
            todo = [(p, st) for p, st in on_disk.items() if known.get(p) != (st.st_mtime_ns, st.st_size)]
            with batch() as db:
                db.executemany("DELETE FROM images WHERE path = ?", [(_key(p),) for p in gone])
            report.removed += len(gone)
            for start in range(0, len(todo), _BATCH):
                if cancel is not None and cancel.is_set():
                    break
                chunk = [(p, st, read_metadata(p)) for p, st in todo[start:start + _BATCH]]
                with batch() as db:
                    for p, st, meta in chunk:
                        self._upsert(db, Path(p), st, meta)
                        if p in known:
                            report.updated += 1
                        else:
                            report.added += 1
                        if meta.source == "none" and meta.errors:
                            report.unreadable.append(p)
                if progress is not None:
                    progress(min(start + _BATCH, len(todo)), len(todo))

    # -- reading ---------------------------------------------------------------------------

    def count(self) -> int:
        with self._read() as db:
            return db.execute("SELECT count(*) FROM images").fetchone()[0]

    def query(self, query: Query = Query(), limit: int | None = None, image_id: int | None = None) -> list[tuple[int, str]]:
        """(id, path) of the matching images, newest first (only ``image_id``, if given)."""
        sql = "SELECT images.id, images.path FROM images"
        where: list[str] = []
        args: list[Any] = []
        if image_id is not None:
            where.append("images.id = ?")
            args.append(image_id)
        for word in re.findall(r"\w+", query.text, flags=re.UNICODE):
            # a word matches anywhere in a word ("eart" finds "heart"); the full-text index adds
            # case folding beyond ASCII for words that start the same
            like = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(images.id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?) OR "
                         + " OR ".join(f"images.{c} LIKE ? ESCAPE '\\'" for c in _SEARCHED) + ")")
            args.extend([fts_query(word), *[like] * len(_SEARCHED)])
        if query.model_id:
            where.append("images.model_id = ?")
            args.append(query.model_id)
        if query.scheduler:
            where.append("images.scheduler = ?")
            args.append(query.scheduler)
        if query.favourites_only:
            where.append("images.favourite = 1")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY images.created DESC, images.id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._read() as db:
            return [(image_id, _path_text(path)) for image_id, path in db.execute(sql, args)]

    def record(self, image_id: int) -> ImageRecord | None:
        with self._read() as db:
            row = db.execute(f"SELECT {_RECORD_COLUMNS} FROM images WHERE id = ?", (image_id,)).fetchone()
        return _record(row) if row else None

    def record_by_path(self, path: Path | str) -> ImageRecord | None:
        with self._read() as db:
            row = db.execute(f"SELECT {_RECORD_COLUMNS} FROM images WHERE path = ?", (_key(Path(path).resolve()),)).fetchone()
        return _record(row) if row else None

    def distinct(self, column: str) -> list[str]:
        if column not in ("model_id", "scheduler"):
            raise ValueError(column)
        with self._read() as db:
            rows = db.execute(f"SELECT DISTINCT {column} FROM images WHERE {column} != '' ORDER BY {column}")
            return [r[0] for r in rows]

    # -- favourites, deleting ----------------------------------------------------------------

    def set_favourite(self, image_id: int, favourite: bool) -> None:
        with self._write() as db:
            db.execute("UPDATE images SET favourite = ? WHERE id = ?", (int(favourite), image_id))
            row = db.execute("SELECT path FROM images WHERE id = ?", (image_id,)).fetchone()
            if row:
                favourites = self._favourite_set()
                (favourites.add if favourite else favourites.discard)(_path_text(row[0]))
                self._state["favourites"] = sorted(favourites)
                self._save_state()

    def delete(self, image_ids: Iterable[int]) -> list[tuple[str, str]]:
        """Move images out of sight (renamed to a hidden ``.deleted-`` file) and out of the index.

        Returns what ``undo_delete`` needs; ``purge_deleted`` then sends the files to the system's
        trash.
        """
        moved: list[tuple[str, str]] = []
        with self._write() as db:
            for image_id in image_ids:
                row = db.execute("SELECT path FROM images WHERE id = ?", (image_id,)).fetchone()
                if row is None:
                    continue
                path = Path(_path_text(row[0]))
                hidden = path.with_name(f"{DELETED_PREFIX}{path.name}")
                try:
                    os.replace(path, hidden)
                except FileNotFoundError:
                    pass
                else:
                    moved.append((str(path), str(hidden)))
                db.execute("DELETE FROM images WHERE id = ?", (image_id,))
        return moved

    def undo_delete(self, moved: list[tuple[str, str]]) -> list[int]:
        restored = []
        for original, hidden in moved:
            if Path(hidden).exists() and not Path(original).exists():
                os.replace(hidden, original)
                restored.append(self.add_file(original))
        return restored

    def purge_deleted(self, moved: list[tuple[str, str]] | None = None) -> int:
        """Send hidden deleted files to the system's trash: those in ``moved``, or every one below
        the roots (a crash can leave some). Each goes under its original name, so restoring it from
        the file manager brings the picture back, recipe and all, and the next sync indexes it.
        Where the drive has no trash, the file is removed for good. Returns how many went."""
        hidden = [Path(h) for _, h in moved] if moved is not None else [
            p for root in self.roots if root.is_dir() for p in root.rglob(f"{DELETED_PREFIX}*")]
        count = 0
        for path in hidden:
            if not path.exists():
                continue
            original = path.with_name(path.name[len(DELETED_PREFIX):])
            target = path
            if not original.exists():
                try:
                    os.replace(path, original)
                    target = original
                except OSError:
                    pass
            try:
                send2trash(str(target))
            except OSError as exc:  # no trash on this drive (TrashPermissionError is an OSError)
                log.info("no trash for %s (%s); removing it", target, exc)
                target.unlink(missing_ok=True)
            count += 1
        return count


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _created(meta: ImageMetadata, stat: os.stat_result) -> float:
    text = meta.info.get("created")
    if isinstance(text, str) and text:
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    return stat.st_mtime


def open_default_store(extra_roots: Iterable[Path | str] = ()) -> GalleryStore:
    """The index in the user data folder, over the default output folder and ``extra_roots``."""
    return GalleryStore(roots=[paths.default_output_dir(), *extra_roots])
