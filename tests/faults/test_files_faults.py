"""Classes 5 and 9: new files follow the umask, and publishing a file never replaces another.

With umask 022 every file the app makes (images, exports, ZIPs, settings, the index's side
state) is readable by others; a file whose metadata the app completes keeps the permissions it
had. Where the file system has no hard links (simulated by an ``os.link`` that fails, as on
vfat), four processes saving the same name keep all their images, and an export that runs out
of space (a real small disk, or ENOSPC at the write) leaves nothing behind, not even an empty file.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.core.events import GeneratedImage
from desktop_app.core.recipe import Recipe
from desktop_app.core.settings import Settings
from desktop_app.gallery.export import ExportError, ExportOptions, export_images
from desktop_app.gallery.library import Library
from desktop_app.gallery.store import GalleryStore
from tests.faults.conftest import REPO, save_images


@pytest.fixture
def umask():
    """``umask(mask)`` for the rest of the test (restored after)."""
    before = os.umask(0o022)
    os.umask(before)
    yield lambda mask: os.umask(mask)
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_new_file_follows_the_umask(umask, mask, expected, home, tmp_path):
    umask(mask)
    pictures = home / "pictures"
    with GalleryStore(roots=[pictures]) as store:
        images = save_images(pictures, 2, store=store)
    Settings(theme="dark").save()
    folder = export_images(images, ExportOptions(tmp_path / "export", manifest=True, contact_sheet=True)).destination
    zipped = export_images(images, ExportOptions(tmp_path / "zips" / "all.zip", as_zip=True)).destination
    jpegs = export_images(images, ExportOptions(tmp_path / "jpegs", format="jpeg")).destination
    made = [*images, *folder.iterdir(), *jpegs.iterdir(), zipped, home / "config" / "settings.json",
            home / "data" / "gallery-state.json"]
    assert {str(p): oct(mode(p)) for p in made} == {str(p): oct(expected) for p in made}


def test_completing_an_image_keeps_its_permissions(umask, tmp_path):
    from desktop_app.backend.fake import fake_model

    umask(0o022)
    library = Library(tmp_path, None, dated=False)
    model = fake_model()
    saved = library.save(GeneratedImage(Image.new("RGB", (8, 8)), Recipe.of("x", seed=1), 0, model, "", {})).path
    assert mode(saved) == 0o644
    os.chmod(saved, 0o640)  # the user's choice
    assert library.fill_model_hash(str(model.path), "abcdef0123") == [saved]
    assert mode(saved) == 0o640
    with Image.open(saved) as image:
        assert "abcdef0123" in image.text["parameters"]


NO_LINKS = """
import errno, os
def _no_links(*args, **kwargs):
    raise PermissionError(errno.EPERM, "Operation not permitted")  # what vfat says
os.link = _no_links
"""

SAVER = NO_LINKS + """
import sys, time
from pathlib import Path
from desktop_app.gallery.save import write_atomically
folder, me, count, start = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
while time.time() < start:
    pass
for k in range(count):
    write_atomically(f"{me}-{k}".encode(), folder, "same name.png")
"""


def test_four_processes_saving_one_name_without_hard_links_keep_every_image(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    count, start = 60, time.time() + 1.0
    savers = [subprocess.Popen([sys.executable, "-c", SAVER, str(folder), f"p{n}", str(count), str(start)], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE)
              for n in range(4)]
    errors = [saver.communicate(timeout=120)[1].decode() for saver in savers]
    assert [saver.returncode for saver in savers] == [0] * 4, errors
    contents = sorted(p.read_bytes().decode() for p in folder.iterdir())
    assert contents == sorted(f"p{n}-{k}" for n in range(4) for k in range(count))  # none lost, none empty


@pytest.fixture
def no_hard_links(monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)


def test_saving_without_hard_links_never_replaces_a_file(no_hard_links, tmp_path):
    from desktop_app.gallery.save import write_atomically

    first = write_atomically(b"first", tmp_path, "image.png")
    second = write_atomically(b"second", tmp_path, "image.png")
    assert (first.name, second.name) == ("image.png", "image-2.png")
    assert (first.read_bytes(), second.read_bytes()) == (b"first", b"second")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image-2.png", "image.png"]  # no temporary file left


def _noisy_images(folder: Path, count: int) -> list[Path]:
    """PNGs that do not compress (so a small disk fills up)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for k in range(count):
        path = folder / f"noise-{k}.png"
        Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(path)
        made.append(path)
    return made


@pytest.mark.parametrize("as_zip", [False, True])
def test_an_export_that_fills_a_small_disk_leaves_nothing(no_hard_links, small_disk, tmp_path, as_zip):
    disk = small_disk(1024)
    images = _noisy_images(tmp_path / "pictures", 6)  # ~200 KB each: the disk holds some, not all
    destination = disk / ("all.zip" if as_zip else "export")
    with pytest.raises(ExportError) as caught:
        export_images(images, ExportOptions(destination, as_zip=as_zip))
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value.strerror).endswith("is full. Nothing was exported; free some space and try again.")
    left = [p for p in disk.rglob("*") if p.is_file()]
    assert left == [], left  # not a file, not an empty one


def test_enospc_at_the_write_leaves_nothing(no_hard_links, monkeypatch, tmp_path):
    images = _noisy_images(tmp_path / "pictures", 3)
    real_write, written = os.write, []

    def full_after_two_files(fd, data):
        written.append(len(data))
        if len(written) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_after_two_files)
    with pytest.raises(ExportError) as caught:
        export_images(images, ExportOptions(tmp_path / "out" / "export", manifest=True))
    assert caught.value.errno == errno.ENOSPC
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []
