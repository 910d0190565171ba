"""Class 7: Ctrl+C outside the denoising loop (start-up, saving, the decode after the last step).

A real SIGINT is sent to a real ``diffuse-studio generate`` process at the moment it matters
(at the first picture's save, during start-up); the command exits with 130, prints the path of
every picture it saved, and every picture of the batch is on disk and in the index.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from desktop_app.gallery.store import GalleryStore, Query
from tests.faults.conftest import FAKE_BACKEND, no_traceback, run_cli

SIGINT_AT_SAVE = FAKE_BACKEND + """
import os, signal
from desktop_app.gallery import library as _library
_save, _sent = _library.Library.save, []
def _save_after_ctrl_c(self, item, *args, **kwargs):
    if not _sent:
        _sent.append(True)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C while the first picture is being written
    return _save(self, item, *args, **kwargs)
_library.Library.save = _save_after_ctrl_c
"""

SIGINT_AT_START = """
import os, signal, time
import desktop_app.cli.commands as _commands
def _interrupted(*args):
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C while the engine is starting
    time.sleep(10)  # the signal interrupts this
    raise AssertionError("the signal did not arrive")
_commands.make_backend = _interrupted
"""


def test_ctrl_c_at_the_save_step_keeps_the_whole_batch(home):
    result = run_cli(["generate", "--model", "fake", "--prompt", "a red circle", "--batch", "3", "--seed", "7",
                      "--steps", "2"], home, script=SIGINT_AT_SAVE)
    err = no_traceback(result)
    assert result.returncode == 130, err
    printed = [Path(os.fsdecode(line)) for line in result.stdout.splitlines()]
    assert len(printed) == 3 and all(p.is_file() for p in printed), (printed, err)
    assert "cancelling… (pictures already made are still saved)" in err
    with GalleryStore() as store:
        assert {Path(p) for _, p in store.query(Query())} == {p.resolve() for p in printed}


def test_ctrl_c_at_start_up_exits_130_without_a_traceback(home):
    result = run_cli(["generate", "--prompt", "a red circle"], home, script=SIGINT_AT_START)
    err = no_traceback(result)
    assert result.returncode == 130
    assert err.splitlines()[-1] == "interrupted"


def test_ctrl_c_during_a_reindex_leaves_the_index_and_exits_130(home):
    from tests.faults.conftest import save_images

    pictures = home / "pictures"
    save_images(pictures, 5)
    with GalleryStore(roots=[pictures]) as store:
        store.sync()
    script = """
import os, signal
from desktop_app.gallery import store as _store
_read = _store.read_metadata
def _read_then_ctrl_c(path):
    os.kill(os.getpid(), signal.SIGINT)
    return _read(path)
_store.read_metadata = _read_then_ctrl_c
"""
    result = run_cli(["gallery", "--reindex"], home, script=script)
    no_traceback(result)
    assert result.returncode == 130
    with GalleryStore() as store:
        assert store.count() == 5


def _Result(recipe, images):  # noqa: N802 - the engine's own result type, filled as a finished job's
    from desktop_app.backend.fake import fake_model
    from desktop_app.backend.local.generate import GenerationResult

    return GenerationResult(recipe, fake_model(), images=images, seeds=[1], timings={"total": 0.1}, device="cpu",
                            precision="fp32")


class _EngineCancelledDuringDecode:
    """An engine whose user pressed Ctrl+C after the last step, while the pictures were decoded."""

    def __init__(self, *args, **kwargs):
        self.hasher = type("Hasher", (), {"known": staticmethod(lambda model: "")})()

    def load(self, model_id, options):
        return type("Loaded", (), {"placement": type("P", (), {"describe": staticmethod(lambda: "CPU")})()})()

    def load_for(self, recipe, options):
        return self.load(recipe.model.id, options)

    def generate(self, recipe, options, cancel):
        from PIL import Image

        from desktop_app.backend.local.loop import StepUpdate

        yield StepUpdate(1, 1, 0.1, 10.0, None)
        cancel.set()  # after the last step: the decode still finishes
        return _Result(recipe, [Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8))])

    def close(self):
        pass


def test_a_cancel_after_the_last_step_still_delivers_the_pictures():
    from desktop_app.backend.local import LocalBackend
    from desktop_app.core.events import Finished, ImageMade
    from desktop_app.core.options import RunOptions
    from desktop_app.core.recipe import Recipe

    backend = LocalBackend([], engine_factory=_EngineCancelledDuringDecode)
    backend.start()
    try:
        job = backend.submit(Recipe.of("a red circle", batch_size=2), RunOptions(device="cpu"))
        events = []
        done = threading.Event()
        while not done.is_set():
            event = backend.next_event(5)
            assert event is not None, events
            events.append(event)
            if getattr(event, "job_id", None) == job and type(event).__name__ in ("Finished", "Failed", "Cancelled"):
                done.set()
    finally:
        backend.close()
    assert sum(isinstance(e, ImageMade) for e in events) == 2
    assert isinstance(events[-1], Finished)
