"""The gallery index's SQLite schema, and the migrations that bring an older index up to date.

``PRAGMA user_version`` holds the schema version. Version N is reached by running
``MIGRATIONS[N - 1]`` on a version N - 1 database, all of them in one transaction (so a migration
runs its statements through ``run_script``, never ``executescript``, which commits first); a new
version only ever appends a migration. The index can always be rebuilt from the image files, so a migration
may also drop and re-create a table when that is simpler.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Run each statement of ``script`` inside the caller's transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {statement.strip()[:60]}")


def _schema_v1(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            mtime_ns INTEGER NOT NULL,
            size INTEGER NOT NULL,
            created REAL NOT NULL,
            width INTEGER, height INTEGER,
            source TEXT NOT NULL,
            prompt TEXT NOT NULL DEFAULT '',
            negative_prompt TEXT NOT NULL DEFAULT '',
            model_id TEXT NOT NULL DEFAULT '',
            model_name TEXT NOT NULL DEFAULT '',
            model_hash TEXT NOT NULL DEFAULT '',
            scheduler TEXT NOT NULL DEFAULT '',
            seed INTEGER, steps INTEGER, guidance_scale REAL,
            request_json TEXT NOT NULL DEFAULT '{}',
            parameters TEXT NOT NULL DEFAULT '',
            problems TEXT NOT NULL DEFAULT '',
            favourite INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX images_created ON images (created DESC, id DESC);
        CREATE INDEX images_model ON images (model_id);
        CREATE INDEX images_scheduler ON images (scheduler);
        CREATE VIRTUAL TABLE images_fts USING fts5(
            prompt, negative_prompt, model_id, model_name, content='images', content_rowid='id'
        );
        CREATE TRIGGER images_ai AFTER INSERT ON images BEGIN
            INSERT INTO images_fts (rowid, prompt, negative_prompt, model_id, model_name)
            VALUES (new.id, new.prompt, new.negative_prompt, new.model_id, new.model_name);
        END;
        CREATE TRIGGER images_ad AFTER DELETE ON images BEGIN
            INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt, model_id, model_name)
            VALUES ('delete', old.id, old.prompt, old.negative_prompt, old.model_id, old.model_name);
        END;
        CREATE TRIGGER images_au AFTER UPDATE OF prompt, negative_prompt, model_id, model_name ON images BEGIN
            INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt, model_id, model_name)
            VALUES ('delete', old.id, old.prompt, old.negative_prompt, old.model_id, old.model_name);
            INSERT INTO images_fts (rowid, prompt, negative_prompt, model_id, model_name)
            VALUES (new.id, new.prompt, new.negative_prompt, new.model_id, new.model_name);
        END;
        """
    )


def _paths_as_bytes(db: sqlite3.Connection) -> None:
    """v2: a path is stored as the bytes the file system uses (a BLOB), so a name that is not valid
    UTF-8 is kept exactly; a TEXT column stores a BLOB as it is."""
    db.execute("UPDATE images SET path = CAST(path AS BLOB) WHERE typeof(path) = 'text'")


# Schema version N is reached by running MIGRATIONS[N - 1] on a version N - 1 database.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_schema_v1, _paths_as_bytes]
SCHEMA_VERSION = len(MIGRATIONS)
