"""The bridge between a backend and the window: signals in the protocol's order, pictures saved
through the library before the window hears of them, and one end per job, also at close."""

from __future__ import annotations

from pathlib import Path

from desktop_app.backend.fake import FakeBackend
from desktop_app.backend.local.discovery import inspect_model
from desktop_app.core.recipe import Recipe
from desktop_app.gallery.library import Library
from desktop_app.gallery.metadata import read_metadata
from desktop_app.gallery.store import GalleryStore
from desktop_app.gui.bridge import BackendBridge
from tests.backend.helpers import options

LONG = 60_000


def _recipe(**flat) -> Recipe:
    return Recipe.of("a red circle", model_id="tiny", scheduler="DDIM", steps=3, seed=11).with_(**flat)


def test_pictures_are_saved_and_indexed_before_the_window_hears_of_them(qtbot, tiny_model, home, tmp_path):
    store = GalleryStore(roots=[home / "pictures"])
    bridge = BackendBridge(FakeBackend([inspect_model(tiny_model)]), Library(home / "pictures", store))
    order = []
    bridge.job_started.connect(lambda job: order.append("started"))
    bridge.progress.connect(lambda job, step, *_: order.append(f"step {step}"))
    bridge.image_saved.connect(lambda path, image_id: order.append(("saved", path, image_id)))
    bridge.image_ready.connect(lambda job, index, image, path: order.append(("image", index, path, image.width())))
    try:
        bridge.start()
        with qtbot.waitSignal(bridge.job_finished, timeout=LONG) as finished:
            job = bridge.submit(_recipe(batch_size=2), options(), tmp_path / "chosen-folder")
        assert finished.args[0] == job
        summary = finished.args[1]
        saved = [Path(p) for p in summary.saved]
        assert len(saved) == 2 and all(p.is_file() and tmp_path / "chosen-folder" in p.parents for p in saved)
        assert order[:4] == ["started", "step 1", "step 2", "step 3"]
        assert [o[0] for o in order[4:]] == ["saved", "image", "saved", "image"]
        assert [o[2] for o in order[4:] if o[0] == "image"] == [str(p) for p in saved]
        assert store.record(order[4][2]).path == saved[0].resolve()  # the row the window can show at once
        assert read_metadata(saved[1]).request["seed"] == 12
    finally:
        bridge.stop()
        bridge.wait()
        store.close()


def test_a_picture_that_cannot_be_saved_is_reported_and_still_shown(qtbot, tiny_model, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("where the output folder should be")
    bridge = BackendBridge(FakeBackend([inspect_model(tiny_model)]), Library(blocker))
    failures, images = [], []
    bridge.save_failed.connect(lambda job, text: failures.append(text))
    bridge.image_ready.connect(lambda job, index, image, path: images.append(path))
    try:
        bridge.start()
        with qtbot.waitSignal(bridge.job_finished, timeout=LONG) as finished:
            bridge.submit(_recipe(), options(), blocker)
    finally:
        bridge.stop()
        bridge.wait()
    assert finished.args[1].saved == ("",) and images == [""]
    assert len(failures) == 1 and "could not be saved" in failures[0]


def test_stopping_with_jobs_queued_ends_each_once(qtbot, tiny_model, tmp_path):
    backend = FakeBackend([inspect_model(tiny_model)])
    backend.hold_at = 1  # the first job waits at its first step
    bridge = BackendBridge(backend, Library(tmp_path))
    ends: dict[str, list[str]] = {}
    for kind in ("finished", "failed", "cancelled"):
        getattr(bridge, f"job_{kind}").connect(lambda job, *_, kind=kind: ends.setdefault(job, []).append(kind))
    bridge.start()
    with qtbot.waitSignal(bridge.job_started, timeout=LONG):
        ids = [bridge.submit(_recipe(), options(), tmp_path) for _ in range(3)]
    bridge.stop()
    bridge.wait()
    qtbot.waitUntil(lambda: len(ends) == 3, timeout=LONG)
    assert ends == {job: ["cancelled"] for job in ids}
