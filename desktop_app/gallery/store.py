"""The gallery index: an SQLite database over the image files.

Files are the truth. The index (``gallery.sqlite3`` in the user data folder, WAL mode) only makes
listing, filtering and full-text search (FTS5 over prompt, negative prompt and model) fast; it can
always be rebuilt from the files, and is rebuilt when it is missing or corrupt. ``sync`` notices
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from send2trash import send2trash

from desktop_app.core import paths
from desktop_app.gallery import schema
from desktop_app.gallery.formats import DELETED_PREFIX, TEMP_PREFIX
from desktop_app.gallery.metadata import ImageMetadata, read_metadata
from desktop_app.gallery.scan import scan_images

log = logging.getLogger(__name__)

DB_NAME = "gallery.sqlite3"
STATE_NAME = "gallery-state.json"
_BATCH = 200


class IndexCorrupt(Exception):
    pass


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
    values[1] = Path(values[1])
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

    def __init__(self, db_path: Path | None = None, roots: Iterable[Path] = (), *, check: bool = True):
        self.db_path = Path(db_path) if db_path is not None else default_db_path()
        self.state_path = self.db_path.with_name(STATE_NAME)
        self.recovered: str = ""  # why the index was rebuilt on open, "" when it was fine
        self._lock = threading.RLock()
        self._state = self._load_state()
        self._db = self._open(check)
        for root in roots:
            self.add_root(root)

    # -- opening, schema, recovery ----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.db_path, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > schema.SCHEMA_VERSION:
            raise IndexCorrupt(f"the index was written by a newer version (schema {version} > {schema.SCHEMA_VERSION})")
        for number in range(version, schema.SCHEMA_VERSION):
            with db:
                schema.MIGRATIONS[number](db)
                db.execute(f"PRAGMA user_version = {number + 1}")

    def _open(self, check: bool) -> sqlite3.Connection:
        existed = self.db_path.exists()
        db = None
        try:
            db = self._connect()
            if check and existed:
                result = db.execute("PRAGMA quick_check").fetchone()[0]
                if result != "ok":
                    raise IndexCorrupt(result)
            self._migrate(db)
            db.execute("SELECT count(*) FROM images_fts WHERE images_fts MATCH 'x'").fetchone()
            return db
        except (sqlite3.DatabaseError, IndexCorrupt) as exc:
            if db is not None:
                db.close()
            return self._replace_corrupt(exc)

    def _replace_corrupt(self, reason: Exception) -> sqlite3.Connection:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = self.db_path.with_name(f"{self.db_path.name}.corrupt-{stamp}")
        log.warning("the gallery index %s is unusable (%s); moved to %s and rebuilding", self.db_path, reason, aside)
        os.replace(self.db_path, aside)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        self.recovered = f"the index was unusable ({reason}) and was rebuilt from the image files"
        db = self._connect()
        self._migrate(db)
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
        with self._lock, self._db:
            yield self._db

    # -- side state (roots, favourites) -------------------------------------------------------

    def _load_state(self) -> dict[str, list[str]]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        state = state if isinstance(state, dict) else {}
        return {"roots": [str(r) for r in state.get("roots", [])], "favourites": [str(f) for f in state.get("favourites", [])]}

    def _save_state(self) -> None:
        temp = self.state_path.with_name(f"{TEMP_PREFIX}{self.state_path.name}")
        try:
            temp.write_text(json.dumps(self._state, indent=1), encoding="utf-8")
            os.replace(temp, self.state_path)
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
        values = (
            str(path), stat.st_mtime_ns, stat.st_size, created, meta.width, meta.height, meta.source,
            str(request.get("prompt", "")), str(request.get("negative_prompt", "")), str(request.get("model_id", "")),
            str(model.get("name", "")), str(model.get("hash", "") or meta.info.get("Model hash", "")),
            str(request.get("scheduler", "")), _int(request.get("seed")), _int(request.get("steps")),
            _float(request.get("guidance_scale")), json.dumps(request, default=str), meta.parameters,
            "; ".join(meta.errors), favourite,
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
        return db.execute("SELECT id FROM images WHERE path = ?", (str(path),)).fetchone()[0]

    def _favourite_set(self) -> set[str]:
        return set(self._state["favourites"])

    def sync(self, progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None) -> SyncReport:
        """Bring the index in line with the files: add new images, re-read changed ones, drop gone ones."""
        started = time.perf_counter()
        report = SyncReport()
        for root in self.roots:
            if not root.is_dir():
                continue  # an unplugged drive: keep its images listed rather than forget them
            on_disk = dict(scan_images(root))
            prefix = str(root) + os.sep
            with self._lock:
                known = {p: (m, s) for p, m, s in self._db.execute(
                    "SELECT path, mtime_ns, size FROM images WHERE substr(path, 1, ?) = ?", (len(prefix), prefix))}
            gone = [p for p in known if p not in on_disk]
            todo = [(p, st) for p, st in on_disk.items() if known.get(p) != (st.st_mtime_ns, st.st_size)]
            with self._write() as db:
                db.executemany("DELETE FROM images WHERE path = ?", [(p,) for p in gone])
            report.removed += len(gone)
            for start in range(0, len(todo), _BATCH):
                if cancel is not None and cancel.is_set():
                    break
                chunk = [(p, st, read_metadata(p)) for p, st in todo[start:start + _BATCH]]
                with self._write() as db:
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
        report.seconds = time.perf_counter() - started
        return report

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> SyncReport:
        """Forget the index and read every image file again."""
        with self._write() as db:
            db.execute("DELETE FROM images")
            db.execute("INSERT INTO images_fts (images_fts) VALUES ('rebuild')")
        return self.sync(progress)

    # -- reading ---------------------------------------------------------------------------

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM images").fetchone()[0]

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
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def record(self, image_id: int) -> ImageRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_RECORD_COLUMNS} FROM images WHERE id = ?", (image_id,)).fetchone()
        return _record(row) if row else None

    def record_by_path(self, path: Path | str) -> ImageRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_RECORD_COLUMNS} FROM images WHERE path = ?", (str(Path(path).resolve()),)).fetchone()
        return _record(row) if row else None

    def distinct(self, column: str) -> list[str]:
        if column not in ("model_id", "scheduler"):
            raise ValueError(column)
        with self._lock:
            rows = self._db.execute(f"SELECT DISTINCT {column} FROM images WHERE {column} != '' ORDER BY {column}")
            return [r[0] for r in rows]

    # -- favourites, deleting ----------------------------------------------------------------

    def set_favourite(self, image_id: int, favourite: bool) -> None:
        with self._write() as db:
            db.execute("UPDATE images SET favourite = ? WHERE id = ?", (int(favourite), image_id))
            row = db.execute("SELECT path FROM images WHERE id = ?", (image_id,)).fetchone()
            if row:
                favourites = self._favourite_set()
                (favourites.add if favourite else favourites.discard)(row[0])
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
                path = Path(row[0])
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
