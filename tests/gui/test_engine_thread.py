"""The engine thread on its own: messages for errors, and a thread that stops when asked."""

from __future__ import annotations

from desktop_app.engine.models import ModelLoadError
from desktop_app.gui.engine_thread import EngineConfig, EngineThread, Job, _user_message


def test_error_messages_say_what_to_do():
    oom = _user_message(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert "ran out of memory" in oom and "smaller" in oom
    assert "could not be used" in _user_message(ModelLoadError("/m/unet/x.safetensors", "is truncated"))
    assert "log file" in _user_message(ValueError("odd"))


def test_jobs_left_in_the_queue_at_stop_are_cancelled_once_each(qtbot, tmp_path, tiny_model):
    from desktop_app.engine.request import GenerationRequest

    thread = EngineThread(EngineConfig("cpu", "fp32", (str(tiny_model.parent),)))
    cancelled = []
    thread.job_cancelled.connect(cancelled.append)
    jobs = [Job(GenerationRequest(prompt="x", model_id="tiny", steps=2), tmp_path) for _ in range(3)]
    for job in jobs:
        thread.submit(job)
    thread.stop()  # before start: every job is cancelled, none runs
    with qtbot.waitSignal(thread.finished, timeout=120_000):
        thread.start()
    qtbot.waitUntil(lambda: len(cancelled) == 3)
    assert cancelled == [j.id for j in jobs]
    assert not thread.isRunning()
