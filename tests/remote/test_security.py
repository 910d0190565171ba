"""A hostile or broken server: file names it sends never become paths here, nothing it sends can
exhaust memory past the limits, nothing it sends is run as code, and tokens stay out of plain files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from desktop_app.backend.remote.comfyui import Limits, connect
from desktop_app.core.events import Failed, Finished, ImageMade, Progress, Status

from .conftest import FAST, OPTIONS, recipe
from .fake_comfy import picture_for
from .test_jobs import kinds

PACKAGE = Path(__file__).resolve().parents[2] / "desktop_app" / "backend" / "remote"


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("subfolder, filename", [("../../etc", "x.png"), ("", "../../etc/x.png"),
                                                 ("/etc", "/etc/passwd")])
def test_hostile_file_names_never_become_paths(make_fake, make_backend, home, tmp_path, subfolder, filename):
    fake = make_fake(hostile_name=(subfolder, filename))
    os.chdir(tmp_path)  # a relative path would land here
    before = files_under(home) | files_under(tmp_path)
    backend, events = make_backend(fake)
    done = events.until_done(backend.submit(recipe(seed=8), OPTIONS))
    assert kinds(done)[-2:] == ["ImageMade", "Finished"]
    picture = done[-2].image
    assert picture.image.getpixel((0, 0)) == picture_for(8, 64, 64).getpixel((0, 0))
    # the names went back to the server as query values, verbatim, and nowhere else
    (view,) = [q for _m, path, q, _b in fake.requests if path == "/view"]
    assert view == {"filename": filename, "subfolder": subfolder, "type": "output"}
    assert filename not in repr(picture.run) and filename not in repr(picture.extra_chunks)
    written = (files_under(home) | files_under(tmp_path)) - before
    assert {p.name for p in written} <= {"comfyui-jobs.sqlite3", "comfyui-jobs.sqlite3-wal", "comfyui-jobs.sqlite3-shm"}


def test_an_oversized_frame_closes_the_connection_and_the_job_still_finishes(make_fake, make_backend):
    fake = make_fake(oversized_frame=1024 * 1024)
    backend, events = make_backend(fake, limits=Limits(ws_message_bytes=256 * 1024))
    done = events.until_done(backend.submit(recipe(seed=13), OPTIONS))
    assert kinds(done)[-2:] == ["ImageMade", "Finished"]
    assert done[-2].image.image.getpixel((0, 0)) == picture_for(13, 64, 64).getpixel((0, 0))
    said = [e.text for e in events.seen if isinstance(e, Status)]
    assert any("over the 262144-byte limit" in text for text in said), said


def test_a_preview_claiming_huge_dimensions_is_not_decoded(make_fake, make_backend):
    fake = make_fake(bomb_preview=True, supports_metadata=False)
    backend, events = make_backend(fake)
    done = events.until_done(backend.submit(recipe(), OPTIONS))
    progress = [e for e in done if isinstance(e, Progress)]
    assert progress[0].preview is None and all(p.preview is not None for p in progress[1:])
    assert isinstance(done[-1], Finished)


def test_a_picture_over_the_size_limit_fails_the_job(make_fake, make_backend):
    fake = make_fake(big_picture=200_000)
    backend, events = make_backend(fake, limits=Limits(image_bytes=50_000))
    done = events.until_done(backend.submit(recipe(), OPTIONS))
    assert isinstance(done[-1], Failed) and done[-1].kind == "server"
    assert "over the 50000-byte limit" in done[-1].message
    assert not [e for e in done if isinstance(e, ImageMade)]


def test_a_picture_claiming_huge_dimensions_fails_the_job(make_fake, make_backend):
    fake = make_fake(bomb_picture=True)
    backend, events = make_backend(fake)
    done = events.until_done(backend.submit(recipe(), OPTIONS))
    assert isinstance(done[-1], Failed)
    assert done[-1].message.startswith(f"ComfyUI at 127.0.0.1:{fake.port}: the picture claims more than")
    assert f"over the limit of {Limits().image_pixels} pixels" in done[-1].message


def test_nothing_a_server_sends_can_be_run_as_code():
    source = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    for pattern in (r"\bpickle\b", r"\beval\(", r"\bexec\(", r"torch\.load", r"yaml\.load", r"\bmarshal\b",
                    r"__import__", r"importlib"):
        assert not re.search(pattern, source), pattern


def test_a_token_is_sent_as_bearer_and_a_wrong_one_says_so(make_fake):
    fake = make_fake(token="s3cret")
    with pytest.raises(ConnectionError, match=r"refused .*HTTP 401.*token"):
        connect(fake.url, "wrong", timeout=3, timing=FAST)
    backend = connect(fake.url, "s3cret", timeout=5, timing=FAST)
    try:
        assert backend.models().find("sd15-random.safetensors") is not None
    finally:
        backend.close()


def test_an_unreachable_server_is_one_line_naming_it():
    with pytest.raises(ConnectionError) as raised:
        connect("http://127.0.0.1:9", timeout=1, timing=FAST)
    message = str(raised.value)
    assert message.startswith("cannot connect to ComfyUI at 127.0.0.1:9:") and "\n" not in message
    assert "check that it runs" in message
