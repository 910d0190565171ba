"""Class 3: a busy, locked or full database is a bad moment, not a corrupt index.

The faults are real: a second process holding the index with an exclusive lock (with committed
rows still in its WAL), four processes creating a new index at the same instant, a small file
system filled to the last byte. Only damage may move the index aside; everything else waits,
then says what is wrong, and leaves the index, its WAL and every image as they were.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop_app.cli.main import main
from desktop_app.gallery.store import GalleryStore, Query, default_db_path
from tests.faults.conftest import REPO, fill_up, save_images

# A second process: adds one row, then holds the whole index (exclusive locking mode keeps the
# lock, and the row in the WAL, until it exits) for the given seconds.
HOLDER = """
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=0)
db.execute("PRAGMA locking_mode=EXCLUSIVE")
db.execute("INSERT INTO images (path, mtime_ns, size, created, source) VALUES (?, 0, 0, 0, 'none')",
           (os.fsencode(sys.argv[2]),))
db.commit()
print("holding", flush=True)
time.sleep(float(sys.argv[3]))
db.close()
"""


def hold_index(db_path: Path, row_path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db_path), str(row_path), str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert holder.stdout.readline() == b"holding\n", holder.stderr.read().decode()
    return holder


def index_files(db_path: Path) -> list[str]:
    return sorted(p.name for p in db_path.parent.iterdir() if p.name.startswith(db_path.name))


@pytest.fixture
def indexed(home):
    pictures = home / "pictures"
    images = save_images(pictures, 4)
    with GalleryStore(roots=[pictures]) as store:
        store.sync()
    return pictures, images


def test_a_locked_index_is_reported_and_kept_with_its_wal(indexed, home):
    pictures, images = indexed
    db_path = default_db_path()
    holder = hold_index(db_path, pictures / "held.png", 30)
    try:
        wal = Path(f"{db_path}-wal")
        assert wal.stat().st_size > 0  # the holder's committed row is only in the WAL
        files = index_files(db_path)
        with pytest.raises(OSError) as caught:
            GalleryStore(busy_timeout=0.2)
        assert str(caught.value.strerror) == (f"The gallery index {db_path} is in use by another program (database "
                                              "is locked). Close the other Diffuse Studio, or the program that has "
                                              "it open, and try again.")
        assert index_files(db_path) == files  # nothing moved aside, the WAL still there
    finally:
        holder.kill()
        holder.wait()
    with GalleryStore() as store:
        assert store.recovered == ""
        assert store.count() == 5  # the four images and the row that was only in the WAL
        assert {Path(p) for _, p in store.query(Query())} >= {p.resolve() for p in images}


def test_the_cli_waits_for_a_short_lock_and_then_works(indexed, home, capsys):
    pictures, _ = indexed
    (held,) = save_images(pictures, 1, prompt="held")
    held.rename(pictures / "held.png")
    holder = hold_index(default_db_path(), pictures / "held.png", 1.0)
    try:
        assert main(["gallery"]) == 0
    finally:
        holder.wait()
    captured = capsys.readouterr()
    assert "note:" not in captured.err and "5 images" in captured.out
    assert not list(default_db_path().parent.glob("*.corrupt-*"))


def test_the_cli_reports_a_lock_that_lasts_with_one_line(indexed, home, capsys, monkeypatch):
    from desktop_app.gallery import index_file

    pictures, _ = indexed
    monkeypatch.setattr(index_file, "BUSY_TIMEOUT", 0.2)
    holder = hold_index(default_db_path(), pictures / "held.png", 30)
    try:
        assert main(["gallery", "--reindex"]) == 1
        err = capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert err.splitlines() == [f"error: The gallery index {default_db_path()} is in use by another program (database "
                                "is locked). Close the other Diffuse Studio, or the program that has it open, and "
                                "try again."]
    with GalleryStore() as store:
        assert store.count() == 5


RACER = """
import sys, time
from pathlib import Path
from desktop_app.gallery.store import GalleryStore
start = float(sys.argv[3])
while time.time() < start:
    pass
with GalleryStore(Path(sys.argv[1])) as store:
    store.add_file(sys.argv[2])
"""


def test_first_runs_racing_to_create_the_index_all_keep_their_image(home, tmp_path):
    images = save_images(tmp_path / "pictures", 4)
    db_path = tmp_path / "data" / "gallery.sqlite3"
    start = time.time() + 1.0
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(db_path), str(image), str(start)], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE)
              for image in images]
    errors = [racer.communicate(timeout=60)[1].decode() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0, 0], errors
    assert errors == ["", "", "", ""]  # no warning that the index was unusable
    assert not list(db_path.parent.glob("*.corrupt-*"))
    with GalleryStore(db_path) as store:
        assert store.count() == 4


def test_a_full_disk_is_reported_and_the_index_kept(small_disk, tmp_path):
    disk = small_disk(2048)
    db_path = disk / "gallery.sqlite3"
    pictures = tmp_path / "pictures"
    save_images(pictures, 3)
    with GalleryStore(db_path, roots=[pictures]) as store:
        store.sync()
    before = {name: (disk / name).read_bytes() for name in index_files(db_path)}
    fill_up(disk)
    save_images(pictures, 40, prompt="more pictures than the index has room for")
    with pytest.raises(OSError) as caught:
        with GalleryStore(db_path, roots=[pictures]) as store:
            store.sync()
    assert caught.value.strerror.startswith(f"The disk holding the gallery index {db_path} is full (")
    assert caught.value.strerror.endswith("Free some space and try again; the images themselves are not affected.")
    assert not list(disk.glob("*.corrupt-*"))
    (disk / "filler").unlink()
    with GalleryStore(db_path, roots=[pictures]) as store:
        assert store.recovered == ""
        assert store.count() in (3, 43)  # what was committed before the disk filled up, never less
        store.sync()
        assert store.count() == 43
    assert before  # there was an index to keep


@pytest.mark.expect_log(r"gallery index .* is unusable")
def test_real_damage_moves_the_index_aside_with_its_wal_and_never_over_another_copy(indexed, home):
    pictures, images = indexed
    db_path = default_db_path()
    for _ in range(2):  # twice within a second: two copies, neither overwritten
        store = GalleryStore(roots=[pictures])
        store.add_file(images[0])  # something in the WAL
        wal = Path(f"{db_path}-wal").read_bytes()
        store._db.close()  # as a crash would leave it (the WAL not checkpointed)
        Path(f"{db_path}-wal").write_bytes(wal)
        data = bytearray(db_path.read_bytes())
        data[:100] = b"\0" * 100  # the header is gone: real damage
        db_path.write_bytes(bytes(data))
        with GalleryStore(roots=[pictures]) as rebuilt:
            assert "rebuilt from the image files" in rebuilt.recovered
            assert rebuilt.count() == 4
    copies = sorted(p.name for p in db_path.parent.glob("gallery.sqlite3.corrupt-*"))
    assert len([c for c in copies if not c.endswith(("-wal", "-shm"))]) == 2
    assert len([c for c in copies if c.endswith("-wal")]) == 2  # each copy kept its WAL
