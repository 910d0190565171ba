"""The gallery index's SQLite file: opening it, migrating it, and telling damage from a bad moment.

Only damage (an integrity check that fails, "file is not a database", a schema that is not ours)
makes the index worth rebuilding: the damaged file is then moved aside together with its WAL,
never deleted, under a name no other copy has. Everything else SQLite can say (the database is
locked or busy, the disk is full, the folder is read-only, an I/O error) is a bad moment, not a
bad index: the busy timeout waits, and then ``IndexUnavailable`` says what is wrong while every
file stays as it was (the WAL may hold committed rows).
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from desktop_app.gallery import schema

BUSY_TIMEOUT = 10.0  # seconds another process may hold the index before we say so
_CORRUPT = {11, 26}  # SQLITE_CORRUPT (also its extended codes), SQLITE_NOTADB
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_FULL = {13}  # SQLITE_FULL
_CANNOT_WRITE = {3, 8, 14, 23}  # SQLITE_PERM, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_AUTH
_DAMAGE_WORDS = ("malformed", "not a database", "file is encrypted")


class IndexCorrupt(Exception):
    """The index file is damaged (or not ours): it is moved aside and rebuilt from the images."""


class IndexUnavailable(OSError):
    """The index cannot be used just now (busy, full, read-only…); nothing was changed. The message
    says why and what to do; the images themselves are never affected."""


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    return code & 0xFF if isinstance(code, int) else None


def is_damage(exc: BaseException) -> bool:
    if isinstance(exc, IndexCorrupt):
        return True
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = _code(exc)
    if code is not None:
        return code in _CORRUPT
    return any(word in str(exc).lower() for word in _DAMAGE_WORDS)


def is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = _code(exc)
    return code in _BUSY if code is not None else "locked" in str(exc) or "busy" in str(exc)


def unavailable(exc: sqlite3.Error | OSError, db_path: Path) -> IndexUnavailable:
    """The user's message for an index that cannot be used now (not for damage)."""
    reason = str(exc) if isinstance(exc, sqlite3.Error) else (exc.strerror or str(exc))
    code = _code(exc) if isinstance(exc, sqlite3.Error) else None
    text = reason.lower()
    if code == 10 and _nearly_full(db_path):  # SQLITE_IOERR: a full disk often says no more than that
        code, reason = 13, f"{reason}; no space is left"
    if code in _BUSY or "locked" in text or "busy" in text:
        number = errno.EBUSY
        message = (f"The gallery index {db_path} is in use by another program ({reason}). Close the other "
                   "Diffuse Studio, or the program that has it open, and try again.")
    elif code in _FULL or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", 0))) \
            or "full" in text:
        number = errno.ENOSPC
        message = (f"The disk holding the gallery index {db_path} is full ({reason}). Free some space and try "
                   "again; the images themselves are not affected.")
    elif code in _CANNOT_WRITE or "readonly" in text or "read-only" in text or "unable to open" in text:
        number = errno.EACCES
        message = (f"The gallery index {db_path} cannot be written ({reason}). Check that {db_path.parent} "
                   "is a folder you can write to.")
    else:
        number = errno.EIO
        message = f"The gallery index {db_path} cannot be used right now ({reason}). Try again later."
    return IndexUnavailable(number, message, str(db_path))


def _nearly_full(db_path: Path) -> bool:
    try:
        return shutil.disk_usage(db_path.parent).free < 256 * 1024
    except OSError:
        return False


@contextmanager
def reported(db_path: Path) -> Iterator[None]:
    """SQLite's errors as ``IndexUnavailable`` (damage found while working says it will be rebuilt)."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            raise IndexUnavailable(errno.EIO, f"The gallery index {db_path} is damaged ({exc}); it is rebuilt "
                                              "from the image files the next time Diffuse Studio starts.",
                                   str(db_path)) from exc
        raise unavailable(exc, db_path) from exc


def connect(db_path: Path, busy_timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    """A connection (nothing is read yet: ``configure`` does the first reads)."""
    return sqlite3.connect(db_path, check_same_thread=False, timeout=busy_timeout)


def configure(db: sqlite3.Connection) -> None:
    """WAL mode. Raises on a damaged file; the caller closes ``db`` (after moving a damaged file
    aside: closing first lets SQLite delete the WAL)."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")


def check(db: sqlite3.Connection) -> None:
    """Raise IndexCorrupt when the file is damaged (SQLite's own quick integrity check)."""
    result = db.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise IndexCorrupt(result)


def migrate(db: sqlite3.Connection) -> None:
    """Bring the schema up to date, once, also when several processes open a new index at once:
    the version is read again under the write lock, so only the first one creates the tables."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == schema.SCHEMA_VERSION:
        return _check_tables(db)
    if version > schema.SCHEMA_VERSION:
        raise IndexCorrupt(f"the index was written by a newer version (schema {version} > {schema.SCHEMA_VERSION})")
    db.execute("BEGIN IMMEDIATE")  # waits for another process's migration to finish
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version, schema.SCHEMA_VERSION):
            schema.MIGRATIONS[number](db)
        db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION}")
        db.commit()
    except BaseException:
        db.rollback()
        raise
    _check_tables(db)


def _check_tables(db: sqlite3.Connection) -> None:
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"images", "images_fts"} <= names:
        raise IndexCorrupt("the index lacks its tables")
    db.execute("SELECT count(*) FROM images_fts WHERE images_fts MATCH 'x'").fetchone()


def set_aside(db_path: Path) -> Path:
    """Move a damaged index, with its WAL and shared-memory files, to a name no other copy has."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        aside = db_path.with_name(f"{db_path.name}.corrupt-{stamp}" + (f"-{n}" if n > 1 else ""))
        if any(Path(f"{aside}{s}").exists() for s in ("", "-wal", "-shm")):
            continue
        try:
            os.link(db_path, aside)  # fails rather than replace a copy made meanwhile
        except FileExistsError:
            continue
        except OSError:
            os.replace(db_path, aside)  # no hard links here; the name was free a moment ago
        else:
            os.unlink(db_path)
        for suffix in ("-wal", "-shm"):  # the WAL stays with its database: it may hold committed rows
            if Path(f"{db_path}{suffix}").exists():
                os.replace(f"{db_path}{suffix}", f"{aside}{suffix}")
        return aside
    raise IndexUnavailable(errno.EEXIST, f"too many damaged copies of {db_path} are kept; remove some", str(db_path))
