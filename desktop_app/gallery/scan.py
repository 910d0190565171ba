"""Finding the gallery's image files below a folder.

Hidden files and folders are skipped: they hold unfinished saves (``.tmp-…``, see ``save.py``)
and deleted images kept for undo (``.deleted-…``). An unfinished save older than an hour was left
by a crash or a kill; it never became an image, so the scan removes it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from desktop_app.gallery.formats import IMAGE_SUFFIXES, TEMP_PREFIX

STALE_TEMP_SECONDS = 3600


def scan_images(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every image file below ``root``; skips hidden files and folders, removes stale temp files."""
    now = time.time()
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                if name.startswith(TEMP_PREFIX) and entry.is_file():
                    _remove_stale_temp(entry, now)
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file():
                try:
                    yield entry.path, entry.stat()
                except OSError:
                    continue


def _remove_stale_temp(entry: os.DirEntry, now: float) -> None:
    try:
        if now - entry.stat().st_mtime > STALE_TEMP_SECONDS:
            os.unlink(entry.path)  # left by a save that crashed: it never became an image
    except OSError:
        pass
