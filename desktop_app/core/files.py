"""Writing files so that a crash, a kill, a full disk or a second process never costs a file.

Every file the app writes goes through here:

- ``write_new`` gives new data a name that no other file has (``name``, ``name-2``…), all of it or
  nothing: the bytes go to a hidden temporary file in the same folder, are flushed to the disk,
  and only then get their name, which never replaces another file, also where the file system
  has no hard links (FAT, exFAT, some network drives) and another process picks the same name.
- ``replace_file`` writes a file the app owns (settings, the index's side state, an image whose
  metadata it completes) atomically: readers see the old or the new version, never half of one.

New files get the permissions the user's umask gives (``tempfile.mkstemp`` would make them 0600,
unreadable to anyone else in a shared or served folder); a replaced file keeps its own.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path

TEMP_PREFIX = ".tmp-"  # hidden: scans skip these and remove them once they are old
_CREATE = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
# Errors that mean the disk itself failed or is full, not that it has no hard links
_REAL_FAILURES = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EIO, errno.EROFS, errno.EFBIG}
MAX_VARIANTS = 10_000


def create_temp(folder: Path, suffix: str = "", prefix: str = TEMP_PREFIX) -> tuple[int, Path]:
    """A new hidden file in ``folder``, open for writing, with the umask's permissions: (fd, path)."""
    while True:
        path = Path(folder) / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            return os.open(path, _CREATE, 0o666), path
        except FileExistsError:
            continue


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_folder(folder: Path) -> None:
    """Make a new name in ``folder`` survive a power cut (where the system allows it)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _variants(name: str):
    stem, suffix = Path(name).stem, Path(name).suffix
    yield name
    for n in range(2, MAX_VARIANTS + 1):
        yield f"{stem}-{n}{suffix}"


def publish_new(temp: Path, folder: Path, name: str, taken: Callable[[str], bool] | None = None) -> Path:
    """Give the finished file ``temp`` the first free name of ``name``, ``name-2``…; never replaces a file.

    ``taken(candidate)`` may rule out more names (an export's names that differ only in case).
    Raises FileExistsError when every variant is taken.
    """
    for candidate in _variants(name):
        if taken is not None and taken(candidate):
            continue
        final = Path(folder) / candidate
        try:
            os.link(temp, final)  # atomic, and fails instead of replacing
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in _REAL_FAILURES:
                raise
            if _publish_without_links(temp, final):
                return final
            continue
        os.unlink(temp)
        return final
    raise FileExistsError(errno.EEXIST, f"every variant of the name {name!r} is taken in {folder}", str(folder))


def _publish_without_links(temp: Path, final: Path) -> bool:
    """No hard links here: claim the name with an exclusive create, then move the data over the claim.
    False when the name is taken. The claim is an empty file for an instant, and is removed if the
    move fails."""
    try:
        os.close(os.open(final, _CREATE, 0o666))
    except FileExistsError:
        return False
    try:
        os.replace(temp, final)
    except BaseException:
        try:
            final.unlink()
        except OSError:
            pass
        raise
    return True


def write_new(data: bytes, folder: Path, name: str, taken: Callable[[str], bool] | None = None) -> Path:
    """Write ``data`` as ``folder/name`` (or ``name-2``…): all of it or nothing, never over another file.

    Raises OSError (the folder cannot be made or written, the disk is full); nothing is left behind.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, temp = create_temp(folder, Path(name).suffix)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        final = publish_new(temp, folder, name, taken)
    except BaseException:  # also KeyboardInterrupt: never leave the temporary file
        try:
            temp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    fsync_folder(folder)
    return final


def replace_file(path: Path, data: bytes, *, keep_mode: bool = True) -> None:
    """Write ``data`` to ``path`` atomically, replacing what is there (which keeps its permissions
    with ``keep_mode``). Raises OSError; the old file is then untouched."""
    path = Path(path)
    fd, temp = create_temp(path.parent, path.suffix)
    try:
        try:
            if keep_mode:
                try:
                    os.chmod(temp, path.stat().st_mode & 0o7777)
                except FileNotFoundError:
                    pass
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        try:
            temp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    fsync_folder(path.parent)
