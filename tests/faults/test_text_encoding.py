"""Class 2: text that is not valid UTF-8 (file and folder names, --out, prompts from argv or a file).

Names are made for real with bytes that are not UTF-8 (``os.fsdecode(b"...\\xff")`` is how Python
hands them over); the index keeps them exactly, a rebuild never leaves half an index behind, and
a prompt that is not text is refused with one line instead of a traceback from the tokenizer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from desktop_app.cli.main import main
from desktop_app.gallery.store import GalleryStore, Query
from tests.faults.conftest import no_traceback, run_cli, save_images


def undecodable_names(pictures: Path) -> list[Path]:
    """A file and a folder whose names are not UTF-8, each with an image, made with the raw bytes."""
    pictures.mkdir(parents=True, exist_ok=True)
    made = []
    for raw in (b"bad\xff name.png", b"folder \xfe\xfd/inside.png", b"latin1 caf\xe9.png"):
        target = os.fsencode(pictures) + b"/" + raw
        os.makedirs(os.path.dirname(target), exist_ok=True)
        Image.new("RGB", (8, 8), "blue").save(target)
        made.append(Path(os.fsdecode(target)))
    return made


def test_gallery_indexes_names_that_are_not_utf8_losslessly(home, capsys):
    pictures = home / "pictures"
    ordinary = save_images(pictures, 3)
    odd = undecodable_names(pictures)
    assert main(["gallery"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    with GalleryStore() as store:
        assert store.count() == 6
        for path in ordinary + odd:
            record = store.record_by_path(path)
            assert record is not None and record.path == path.resolve()
            assert os.fsencode(record.path) == os.fsencode(path.resolve())  # the very bytes on disk
            assert record.path.is_file()
        indexed = {Path(p) for _, p in store.query(Query())}
        assert indexed == {p.resolve() for p in ordinary + odd}


def test_reindex_with_names_that_are_not_utf8_keeps_every_image(home, capsys):
    pictures = home / "pictures"
    save_images(pictures, 3)
    undecodable_names(pictures)
    assert main(["gallery"]) == 0
    for _ in range(2):  # the old index deleted every row first, then failed: empty on every later run
        assert main(["gallery", "--reindex"]) == 0
        out = capsys.readouterr().out
        assert "6 images" in out
    with GalleryStore() as store:
        assert store.count() == 6


def test_an_interrupted_reindex_leaves_the_old_index_whole(home):
    pictures = home / "pictures"
    save_images(pictures, 3)
    for k in range(260):  # more than one batch of rows
        Image.new("RGB", (4, 4)).save(pictures / f"plain-{k}.png")
    with GalleryStore(roots=[pictures]) as store:
        store.sync()
        before = store.count()
        assert before == 263

        def interrupt(done: int, total: int) -> None:
            raise KeyboardInterrupt  # Ctrl+C while --reindex runs

        with pytest.raises(KeyboardInterrupt):
            store.rebuild(interrupt)
        assert store.count() == before
        assert len(store.query(Query(text="circle"))) == 3  # the search index too
    with GalleryStore() as store:
        assert store.count() == before


def test_a_prompt_from_a_file_with_a_lone_surrogate_is_indexed(home):
    """JSON may escape half a character ("\\udcff"); such a prompt must not stop the index."""
    pictures = home / "pictures"
    pictures.mkdir(parents=True)
    info = PngInfo()
    info.add_text("diffuse_studio", json.dumps({"format": 2, "recipe": {"prompt": {"text": "a \udcff circle"}}}))
    info.add_text("parameters", "a \\udcff circle\nSteps: 3, Seed: 1")
    Image.new("RGB", (8, 8)).save(pictures / "dropped.png", pnginfo=info)
    save_images(pictures, 2)
    with GalleryStore(roots=[pictures]) as store:
        report = store.sync()
        assert report.added == 3
        record = store.record_by_path(pictures / "dropped.png")
        assert record.prompt == "a \ufffd circle"


def test_a_prompt_that_is_not_utf8_is_refused_with_one_line(home, tmp_path):
    out = tmp_path / "out"
    result = run_cli(["generate", b"--prompt", b"a red \xff circle", "--out", str(out)], home)
    err = no_traceback(result)
    assert result.returncode == 2
    assert err.splitlines() == ["error: prompt: the prompt holds bytes that are not UTF-8 text (at character 6); "
                                "type it again, or save the file it came from as UTF-8"]
    assert not out.exists()


def test_an_out_folder_that_is_not_utf8_gets_the_images_and_prints_its_bytes(tmp_path, fake_engine, capfdbinary):
    out = os.fsdecode(os.fsencode(tmp_path) + b"/out \xff")
    code = main(["generate", "--model", "fake", "--prompt", "a red circle", "--steps", "1", "--seed", "3",
                 "--out", out])
    captured = capfdbinary.readouterr()
    assert b"Traceback" not in captured.err
    assert code == 0, captured.err
    printed = captured.out.splitlines()
    assert len(printed) == 1 and printed[0].startswith(os.fsencode(out) + b"/")  # the exact bytes, for scripts
    assert os.path.isfile(printed[0])
