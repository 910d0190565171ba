from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.cli import gallery as cli
from desktop_app.gallery.schema import SCHEMA_VERSION
from desktop_app.gallery.store import GalleryStore, Query, default_db_path, fts_query

from .conftest import make_request, save_image, tiny_image


def _paths(store: GalleryStore, query: Query | None = None) -> list[str]:
    return [p for _, p in store.query(query or Query())]


def test_index_lists_newest_first_and_searches(saved_images, out_dir):
    with GalleryStore(roots=[out_dir]) as store:
        assert store.sync().added == 5
        assert _paths(store) == [str(p) for p in reversed(saved_images)]  # same second: later id first
        assert _paths(store, Query(text="red")) == [str(saved_images[3]), str(saved_images[0])]
        assert _paths(store, Query(text="squ")) == [str(saved_images[3]), str(saved_images[1])]  # prefixes match
        assert _paths(store, Query(text="other")) == [str(saved_images[3]), str(saved_images[2])]  # model id
        assert _paths(store, Query(text="blurry")) == _paths(store)  # negative prompt
        assert _paths(store, Query(model_id="shapes", scheduler="Euler a")) == [str(saved_images[4]), str(saved_images[1])]
        assert store.distinct("model_id") == ["other-model", "shapes"]
        assert store.distinct("scheduler") == ["DDIM", "DPM++ 2M Karras", "Euler a"]
        assert _paths(store, Query(text='"; DROP TABLE images; --')) == []


def test_schema_is_versioned_and_wal(saved_images, out_dir):
    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
    db = sqlite3.connect(default_db_path())
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_the_library_indexes_what_it_saves_from_what_it_wrote(out_dir, monkeypatch):
    from desktop_app.gallery import store as store_module

    with GalleryStore(roots=[out_dir]) as store:
        monkeypatch.setattr(store_module, "read_metadata", lambda path: pytest.fail(f"{path} was read back"))
        path = save_image(tiny_image(), make_request(prompt="freshly made"), output_dir=out_dir, store=store)
        assert _paths(store, Query(text="freshly")) == [str(path)]
        assert store.record_by_path(path).seed == 1234


def test_saving_without_an_index_leaves_the_index_alone(out_dir, tmp_path):
    with GalleryStore(roots=[out_dir]) as store:
        save_image(tiny_image(), make_request(prompt="elsewhere"), output_dir=tmp_path / "cli-out", dated=False)
        assert store.count() == 0 and store.roots == [out_dir.resolve()]  # no side effect, no new gallery folder


def test_files_added_changed_and_deleted_outside_the_app_are_noticed(saved_images, out_dir, tmp_path):
    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
        saved_images[0].unlink()
        foreign = out_dir / "elsewhere" / "from-a1111.png"
        foreign.parent.mkdir()
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("parameters", "a purple hexagon\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 9, Size: 32x32")
        Image.new("RGB", (32, 32)).save(foreign, pnginfo=info)
        (out_dir / "notes.txt").write_text("not an image")
        report = store.sync()
        assert (report.added, report.removed) == (1, 1)
        assert _paths(store, Query(text="hexagon")) == [str(foreign)]
        assert store.count() == 5


def test_reindex_after_deleting_the_database_restores_every_image(saved_images, out_dir, capsys):
    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
        store.set_favourite(store.query(Query(text="triangle"))[0][0], True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{default_db_path()}{suffix}").unlink(missing_ok=True)
    parser = __import__("argparse").ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--reindex"])) == 0
    assert "5 images" in capsys.readouterr().out
    with GalleryStore() as store:
        assert sorted(_paths(store)) == sorted(str(p) for p in saved_images)
        favourites = _paths(store, Query(favourites_only=True))
        assert favourites == [str(saved_images[2])]  # kept in gallery-state.json


@pytest.mark.expect_log(r"gallery index .* is unusable \(file is not a database\)")
def test_corrupt_database_is_replaced_by_a_rebuilt_one(saved_images, out_dir):
    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
    db_path = default_db_path()
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    data = bytearray(db_path.read_bytes())
    data[0:100] = os.urandom(100)  # the header is garbage now
    db_path.write_bytes(bytes(data))
    with GalleryStore() as store:
        assert "rebuilt" in store.recovered
        assert sorted(_paths(store)) == sorted(str(p) for p in saved_images)
    assert list(db_path.parent.glob("gallery.sqlite3.corrupt-*"))
    assert all(p.exists() for p in saved_images)


def test_delete_and_undo(saved_images, out_dir):
    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
        ids = [i for i, _ in store.query(Query(text="red"))]
        moved = store.delete(ids)
        assert store.count() == 3 and not saved_images[0].exists()
        assert store.sync().added == 0  # hidden "deleted" files are not images of the gallery
        store.undo_delete(moved)
        assert store.count() == 5 and saved_images[0].exists()
        contents = {str(p): p.read_bytes() for p in saved_images}
        moved = store.delete(i for i, _ in store.query(Query(text="red")))
        assert store.purge_deleted(moved) == 2
        assert not any(p.name.startswith(".deleted-") for p in out_dir.rglob("*"))
    for original, _ in moved:  # in the system's trash, under their own names, byte for byte
        assert _trashed(Path(original)).read_bytes() == contents[original]


def _trashed(original: Path) -> Path:
    """The freedesktop trash entry for ``original`` (conftest points XDG_DATA_HOME at a temporary folder)."""
    trash = Path(os.environ["XDG_DATA_HOME"]) / "Trash"
    for info in (trash / "info").glob("*.trashinfo"):
        if f"Path={original}" in info.read_text().replace("%20", " "):
            return trash / "files" / info.name.removesuffix(".trashinfo")
    raise AssertionError(f"{original} is not in {trash}")


def test_fts_query_quotes_words():
    assert fts_query('a "b" OR c*') == '"a"* AND "b"* AND "OR"* AND "c"*'
    assert fts_query("  ") == ""


def test_migrations_run_in_order_and_keep_the_data(saved_images, out_dir, monkeypatch):
    from desktop_app.gallery import schema

    with GalleryStore(roots=[out_dir]) as store:
        store.sync()

    def add_rating(db):
        db.execute("ALTER TABLE images ADD COLUMN rating INTEGER NOT NULL DEFAULT 0")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, add_rating])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", len(schema.MIGRATIONS))
    with GalleryStore() as store:
        assert store.recovered == "" and store.count() == 5
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert store._db.execute("SELECT sum(rating) FROM images").fetchone()[0] == 0


@pytest.mark.expect_log(r"written by a newer version")
def test_an_index_from_a_newer_version_is_set_aside_not_destroyed(saved_images, out_dir):
    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
        store._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with GalleryStore() as store:
        assert "newer version" in store.recovered and store.count() == 5
    assert list(default_db_path().parent.glob("gallery.sqlite3.corrupt-*"))


def test_purge_removes_deletions_left_by_a_crash(saved_images, out_dir):
    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
        store.delete([store.query(Query(text="triangle"))[0][0]])  # then the app "crashes": no undo, no purge
        assert store.purge_deleted() == 1
        assert store.count() == 4 and not any(p.name.startswith(".") for p in out_dir.rglob("*"))
    assert _trashed(saved_images[2]).exists()


def test_a_deleted_image_restored_from_the_trash_comes_back_with_its_recipe(saved_images, out_dir):
    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
        (image_id, path), = store.query(Query(text="triangle"))
        store.purge_deleted(store.delete([image_id]))
        assert store.count() == 4
        os.replace(_trashed(Path(path)), path)  # what "Restore" in a file manager does
        assert store.sync().added == 1
        assert _paths(store, Query(text="triangle")) == [path]


def test_where_there_is_no_trash_a_deleted_image_is_removed(saved_images, out_dir, monkeypatch):
    from send2trash.exceptions import TrashPermissionError

    from desktop_app.gallery import store as store_module

    def no_trash(path):
        raise TrashPermissionError(path)

    monkeypatch.setattr(store_module, "send2trash", no_trash)
    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
        assert store.purge_deleted(store.delete([store.query(Query(text="triangle"))[0][0]])) == 1
    assert not saved_images[2].exists() and not any(p.name.startswith(".") for p in out_dir.rglob("*"))
