"""The window, end to end with the real engine on the tiny model where it matters, else on the
scripted fake backend (offscreen Qt)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop_app.backend.fake import FakeBackend
from desktop_app.backend.local.discovery import inspect_model
from desktop_app.gui.bridge import running_bridges

LONG = 120_000  # ms: the machine is shared, so be generous; tests wait on signals, not time


def test_prompt_to_image_previews_first_then_shown_and_saved(qtbot, make_window, settings, home):
    window = make_window(settings, steps=6, real=True)
    events = []
    window.bridge.preview.connect(lambda job, image: events.append(("preview", job)))
    window.bridge.image_ready.connect(lambda job, index, image, path: events.append(("image", job, path)))
    with qtbot.waitSignal(window.bridge.curves_ready, timeout=LONG):
        pass
    assert window.schedule_plot.visited is not None and len(window.schedule_plot.visited) == 6
    qtbot.keyClicks(window.panel.prompt, "a red circle")
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG) as finished:
        qtbot.keyClick(window.panel.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    job_id, summary = finished.args
    kinds = [e[0] for e in events]
    assert "preview" in kinds and "image" in kinds
    assert kinds.index("preview") < kinds.index("image")
    assert summary.recipe.prompt.text == "a red circle"
    saved = Path(summary.saved[0])
    assert saved.is_file() and (home / "pictures") in saved.parents
    assert window.canvas.image is not None and not window.canvas.is_preview
    assert window.canvas.image.width() == 64
    assert window.session_strip.count() == 1
    assert window.queue.state(job_id) == "finished"
    assert window.panel.last_seed == summary.seeds[0]


def test_cancel_mid_run_ends_cancelled_without_an_image(qtbot, make_window, settings, home, tiny_model):
    window = make_window(settings, steps=900, backend=FakeBackend([inspect_model(tiny_model)], step_seconds=0.01))
    images = []
    window.bridge.image_ready.connect(lambda *args: images.append(args))
    window.panel.scheduler.setCurrentText("DDIM")  # runs the 900 steps asked for
    window.panel.prompt.setPlainText("a blue square")
    # plain connections, not waitSignal: a blocker left on the still-emitting progress signal was
    # once called after its test had moved on (the next blocker got progress's arguments; once a crash)
    steps, cancelled = [], []
    window.bridge.progress.connect(lambda job, step, *_: steps.append(step))
    window.bridge.job_cancelled.connect(cancelled.append)
    (job_id,) = window.generate()
    qtbot.waitUntil(lambda: bool(steps) and steps[-1] >= 2, timeout=LONG)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: bool(cancelled), timeout=LONG)
    assert cancelled == [job_id]
    assert images == []
    assert not list((home / "pictures").rglob("*.png"))
    assert window.queue.state(job_id) == "cancelled"
    assert window.progress.format().startswith("Cancelled")


def test_three_queued_jobs_run_in_order(qtbot, make_window, settings):
    window = make_window(settings, steps=2)
    started, ended = [], []
    window.bridge.job_started.connect(started.append)
    window.bridge.job_finished.connect(lambda job, summary: ended.append(job))
    window.panel.prompt.setPlainText("a green triangle")
    window.panel.seed.setValue(10)
    window.panel.batch_count.setValue(3)
    ids = window.generate()
    assert len(ids) == 3 and window.queue.job_ids("queued") == ids
    qtbot.waitUntil(lambda: len(ended) == 3, timeout=LONG)
    assert started == ids and ended == ids
    assert [window.requests[i].output.seed for i in ids] == [10, 11, 12]


def test_removing_a_queued_job_cancels_it_before_it_starts(qtbot, make_window, settings, tiny_model):
    backend = FakeBackend([inspect_model(tiny_model)])
    backend.hold_at = 1  # the first job waits at its first step until the second is removed
    window = make_window(settings, steps=2, backend=backend)
    started, cancelled = [], []
    window.bridge.job_started.connect(started.append)
    window.bridge.job_cancelled.connect(cancelled.append)
    window.panel.prompt.setPlainText("a star")
    window.panel.batch_count.setValue(2)
    first, second = window.generate()
    window.queue.list.setCurrentRow(1)
    window.queue.remove_button.click()
    assert window.queue.job_ids() == [first]
    backend.release()
    qtbot.waitUntil(lambda: cancelled == [second], timeout=LONG)
    assert started == [first]


def test_invalid_size_disables_generate_and_says_why(qtbot, make_window, settings):
    window = make_window(settings, start_engine=False)
    panel = window.panel
    assert window.generate_button.isEnabled()
    panel.size.setCurrentIndex(panel.size.count() - 1)  # Custom…
    panel.width_box.setValue(65)
    assert not window.generate_button.isEnabled()
    error = panel._errors["output.width"]
    assert error.isVisible() and "multiple of" in error.text()
    assert "multiple of" in window.generate_button.toolTip()
    assert window.generate() == []
    panel.width_box.setValue(64)
    assert window.generate_button.isEnabled() and not error.isVisible()


def test_scheduler_specific_controls_appear_only_where_they_apply(make_window, settings):
    window = make_window(settings, start_engine=False)
    panel = window.panel
    panel.scheduler.setCurrentText("DDIM")
    assert panel.eta.isVisible() and not panel.variance.isVisible()
    panel.scheduler.setCurrentText("DDPM")
    assert panel.variance.isVisible() and not panel.eta.isVisible()
    panel.scheduler.setCurrentText("Euler")
    assert not panel.variance.isVisible() and not panel.eta.isVisible()
    assert not panel.guidance_mode.isVisible()  # the tiny model ships no classifier


def test_a_broken_model_fails_its_job_and_the_next_job_runs(qtbot, make_window, settings, tiny_model, tmp_path):
    broken = Path(shutil.copytree(tiny_model, tmp_path / "more-models" / "broken"))
    settings.extra_model_dirs.append(str(broken.parent))
    window = make_window(settings, model="broken", steps=2, real=True)
    weights = next((broken / "unet").glob("*.safetensors"))
    with weights.open("r+b") as fh:  # damaged after the model was listed, as a bad copy would be
        fh.truncate(weights.stat().st_size // 2)
    window.panel.prompt.setPlainText("a red circle")
    with qtbot.waitSignal(window.bridge.job_failed, timeout=LONG) as failed:
        window.generate()
    assert "truncated" in failed.args[1]
    assert any("truncated" in text for text in window.messages.messages("error"))
    window.panel.model.setCurrentIndex(window.panel.model.findData("tiny"))
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        window.generate()


def test_an_unusable_device_fails_jobs_with_a_message(qtbot, make_window, settings):
    settings.device = "cuda"  # this test machine has no CUDA
    window = make_window(settings, steps=2, real=True)
    with qtbot.waitSignal(window.bridge.job_failed, timeout=LONG) as failed:
        window.panel.prompt.setPlainText("a red circle")
        window.generate()
    assert "Settings" in failed.args[1]
    assert any("CUDA" in text for text in window.messages.messages("error"))


def test_closing_mid_run_stops_the_engine_thread(qtbot, make_window, settings):
    window = make_window(settings, steps=900, real=True)
    window.panel.prompt.setPlainText("a blue square")
    steps = []  # a plain connection: no waitSignal blocker left on the still-emitting progress signal
    window.bridge.progress.connect(lambda job, step, *_: steps.append(step))
    window.generate()
    qtbot.waitUntil(lambda: bool(steps), timeout=LONG)
    window.close()
    assert not window.bridge.isRunning()
    assert running_bridges() == []
    import threading

    assert "engine" not in [t.name for t in threading.enumerate()]  # the backend's own thread ended too


def test_classifier_guidance_with_the_built_in_model(qtbot, make_window, settings):
    from desktop_app.backend.local.discovery import discover

    if not any(m.id == "shapes" for m in discover().models):
        pytest.skip("the built-in model is not in models/ yet")
    window = make_window(settings, model="shapes", steps=4, real=True)
    panel = window.panel
    assert panel.guidance_mode.isVisible()
    panel.prompt.setPlainText("a star")
    panel.guidance_mode.setCurrentIndex(1)
    panel.target_colour.setCurrentIndex(panel.target_colour.findData("green"))
    panel.target_shape.setCurrentIndex(panel.target_shape.findData("star"))
    panel.classifier_scale.setValue(4.0)
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG) as finished:
        window.generate()
    guidance = finished.args[1].recipe.guidance
    assert (guidance.classifier_target, guidance.classifier_scale, finished.args[1].recipe.model.id) == ("green star", 4.0, "shapes")


def test_local_and_server_jobs_run_in_one_queue(qtbot, make_window, settings, tiny_model):
    """A model on a server is listed with where it lives; its job goes there, the tiny model's here."""
    from desktop_app.backend.fake import fake_model
    from desktop_app.backend.local import LocalBackend
    from desktop_app.backend.router import BackendRouter

    server = FakeBackend([fake_model("big-xl", native=128, name="Big XL")])
    server.name = "ComfyUI at gpu-box:8188"
    router = BackendRouter({"local": LocalBackend(settings.extra_model_dirs), "gpu-box": server})
    window = make_window(settings, steps=2, backend=router)
    label = window.panel.model.itemText(window.panel.model.findData("big-xl"))
    assert label.endswith("on ComfyUI at gpu-box:8188")
    window.panel.prompt.setPlainText("a castle")
    window.panel.model.setCurrentIndex(window.panel.model.findData("big-xl"))
    window.panel.batch_count.setValue(1)
    finished = []
    window.bridge.job_finished.connect(lambda job, summary: finished.append(summary))
    there = window.generate()
    window.panel.model.setCurrentIndex(window.panel.model.findData("tiny"))
    here = window.generate()
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=LONG)
    assert window.queue.job_ids("finished") == there + here
    sizes = {s.recipe.model.id: s.recipe.output.width for s in finished}
    assert sizes == {"big-xl": 128, "tiny": 64} and [r.model.id for r, _ in server.submitted] == ["big-xl"]
