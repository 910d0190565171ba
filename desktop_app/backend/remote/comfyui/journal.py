"""The durable job journal: every remote job and each of its pictures' prompts, in SQLite in the data
folder, written before anything is sent and moved through its states on disk.

A job's parts (one prompt per picture) go ``planned`` → ``submitting`` (written before the POST) →
``queued`` (the server accepted it) → ``fetched`` (the picture is here, in an event not yet taken)
→ ``delivered`` (handed to the app), or end ``failed``, ``cancelled``, ``lost`` (the server forgot
it: safe to run again) or ``handed_over`` (a newer prompt on another server replaced it). After a
crash, every job with parts short of an end is reconciled with its server.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PART_STATES = ("planned", "submitting", "queued", "fetched", "delivered", "failed", "cancelled", "lost",
               "handed_over")
UNSETTLED = ("planned", "submitting", "queued", "fetched")
JOB_STATES = ("active", "finished", "failed", "cancelled", "lost")
JOURNAL_FILE = "comfyui-jobs.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, created REAL NOT NULL, recipe TEXT NOT NULL, options TEXT NOT NULL,
    pinned TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS parts (
    prompt_id TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(job_id), image_index INTEGER NOT NULL,
    graph TEXT NOT NULL, server TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS parts_by_job ON parts(job_id);
"""


@dataclass(frozen=True)
class JournalPart:
    prompt_id: str
    job_id: str
    index: int
    graph: dict[str, Any]
    server: str
    state: str
    message: str


@dataclass(frozen=True)
class JournalJob:
    job_id: str
    created: float
    recipe: dict[str, Any]
    options: dict[str, Any]
    pinned: str
    state: str
    message: str
    parts: tuple[JournalPart, ...]


class Journal:
    """Thread-safe; each call is one committed transaction."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, *rows: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    self._db.execute(sql, row)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def add_job(self, job_id: str, recipe: dict[str, Any], options: dict[str, Any], pinned: str,
                parts: list[tuple[str, int, dict[str, Any]]]) -> None:
        """The job and its parts (prompt id, picture index, graph), all ``planned``, in one transaction."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, 'active', '')",
                                 (job_id, now, json.dumps(recipe), json.dumps(options), pinned))
                for prompt_id, index, graph in parts:
                    self._db.execute("INSERT INTO parts VALUES (?, ?, ?, ?, '', 'planned', '', ?)",
                                     (prompt_id, job_id, index, json.dumps(graph), now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def add_part(self, prompt_id: str, job_id: str, index: int, graph: dict[str, Any]) -> None:
        self._write("INSERT INTO parts VALUES (?, ?, ?, ?, '', 'planned', '', ?)",
                    (prompt_id, job_id, index, json.dumps(graph), time.time()))

    def set_part(self, prompt_id: str, state: str, server: str | None = None, message: str = "") -> None:
        if state not in PART_STATES:
            raise ValueError(f"unknown part state {state!r}")
        if server is None:
            self._write("UPDATE parts SET state = ?, message = ?, updated = ? WHERE prompt_id = ?",
                        (state, message, time.time(), prompt_id))
        else:
            self._write("UPDATE parts SET state = ?, server = ?, message = ?, updated = ? WHERE prompt_id = ?",
                        (state, server, message, time.time(), prompt_id))

    def set_job(self, job_id: str, state: str, message: str = "") -> None:
        if state not in JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        self._write("UPDATE jobs SET state = ?, message = ? WHERE job_id = ?", (state, message, job_id))

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM parts WHERE job_id = ?", (job_id,))
            self._db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            self._db.execute("COMMIT")

    def jobs(self, state: str) -> list[JournalJob]:
        with self._lock:
            rows = self._db.execute("SELECT job_id, created, recipe, options, pinned, state, message FROM jobs "
                                    "WHERE state = ? ORDER BY created", (state,)).fetchall()
            found = []
            for job_id, created, recipe, options, pinned, job_state, message in rows:
                parts = self._db.execute("SELECT prompt_id, job_id, image_index, graph, server, state, message "
                                         "FROM parts WHERE job_id = ? ORDER BY image_index, updated",
                                         (job_id,)).fetchall()
                found.append(JournalJob(job_id, created, json.loads(recipe), json.loads(options), pinned,
                                        job_state, message,
                                        tuple(JournalPart(p, j, i, json.loads(g), s, st, m)
                                              for p, j, i, g, s, st, m in parts)))
        return found

    def job(self, job_id: str) -> JournalJob | None:
        for state in JOB_STATES:
            for job in self.jobs(state):
                if job.job_id == job_id:
                    return job
        return None
