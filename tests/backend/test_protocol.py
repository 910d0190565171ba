"""The backend protocol's promises, checked against every backend that runs here: this machine's
engine (on the tiny model) and the scripted fake the window tests use. (The ComfyUI backend keeps
the same promises against a transcript-driven fake server: tests/remote.)"""

from __future__ import annotations

import time

import numpy as np
import pytest

from desktop_app.backend.fake import FakeBackend
from desktop_app.backend.local import LocalBackend
from desktop_app.backend.local.discovery import inspect_model
from desktop_app.backend.protocol import Backend
from desktop_app.core.events import (
    TERMINAL,
    Cancelled,
    Curves,
    Failed,
    Finished,
    ImageMade,
    Progress,
    Started,
    Status,
)
from desktop_app.core.models import ModelLoadError
from desktop_app.core.recipe import Recipe
from tests.backend.helpers import options

LONG = 120.0


@pytest.fixture(params=["local", "fake"])
def backend(request, tiny_model):
    made = (LocalBackend([str(tiny_model.parent)]) if request.param == "local"
            else FakeBackend([inspect_model(tiny_model)], step_seconds=0.005))
    made.start()
    yield made
    made.close()


def recipe(**flat) -> Recipe:
    return Recipe.of("a red circle", model_id="tiny", scheduler="DDIM", steps=3, seed=7).with_(**flat)


def events_until_done(backend: Backend, job_ids: list[str], timeout: float = LONG) -> list:
    """Every event until each of ``job_ids`` has had a terminal event."""
    seen, open_jobs, deadline = [], set(job_ids), time.monotonic() + timeout
    while open_jobs:
        assert time.monotonic() < deadline, f"no terminal event for {open_jobs}: {seen[-5:]}"
        event = backend.next_event(0.1)
        if event is None:
            continue
        seen.append(event)
        if isinstance(event, TERMINAL):
            open_jobs.discard(event.job_id)
    return seen


def of_job(events: list, job_id: str) -> list:
    return [e for e in events if getattr(e, "job_id", None) == job_id]


def test_both_are_backends(backend):
    assert isinstance(backend, Backend)
    assert "tiny" in [m.id for m in backend.models().models]
    assert backend.describe("tiny").native_size == (64, 64)
    with pytest.raises(ModelLoadError, match="known models"):
        backend.describe("no-such-model")


def test_a_job_runs_started_progress_images_then_one_finished(backend):
    job = backend.submit(recipe(batch_size=2), options(preview="latent", preview_max_fps=0))
    events = of_job(events_until_done(backend, [job]), job)
    kinds = [type(e) for e in events]
    assert kinds[0] is Started and kinds[-1] is Finished and kinds.count(Finished) == 1
    steps = [e.step for e in events if isinstance(e, Progress) and e.phase == "denoise"]
    assert steps == [1, 2, 3]
    assert any(isinstance(e, Progress) and e.preview is not None and e.preview.dtype == np.uint8 for e in events)
    images = [e.image for e in events if isinstance(e, ImageMade)]
    assert [i.index for i in images] == [0, 1] and [i.seed for i in images] == [7, 8]
    assert kinds.index(ImageMade) > max(i for i, k in enumerate(kinds) if k is Progress)  # pictures after the steps
    assert all(i.image.size == (64, 64) for i in images)
    summary = events[-1].summary
    assert summary.seeds == (7, 8) and summary.recipe.output.width == 64  # resolved: the size filled in
    assert "preview" not in summary.recipe.flat()  # how it ran is not part of what it made


def test_a_bad_recipe_fails_its_job_with_the_problems_and_the_next_job_runs(backend):
    bad = backend.submit(recipe(steps=0, width=63), options())
    good = backend.submit(recipe(), options())
    events = events_until_done(backend, [bad, good])
    (failed,) = [e for e in of_job(events, bad) if isinstance(e, TERMINAL)]
    assert isinstance(failed, Failed) and failed.kind == "invalid"
    assert "steps must be a whole number" in failed.message and "multiple of 2" in failed.message
    assert isinstance(of_job(events, good)[-1], Finished)


def test_cancel_stops_a_running_job_within_a_step_and_drops_a_queued_one(backend):
    running = backend.submit(recipe(steps=400), options())
    queued = backend.submit(recipe(), options())
    seen = []
    while not any(isinstance(e, Progress) and e.job_id == running and e.step >= 2 for e in seen):
        event = backend.next_event(LONG)
        assert event is not None
        seen.append(event)
    backend.cancel(queued)
    backend.cancel(running)
    seen += events_until_done(backend, [running, queued])
    mine = of_job(seen, running)
    assert isinstance(mine[-1], Cancelled) and not any(isinstance(e, ImageMade) for e in mine)
    assert max(e.step for e in mine if isinstance(e, Progress)) < 400
    assert [type(e) for e in of_job(seen, queued)] == [Cancelled]  # never started


def test_closing_with_jobs_queued_ends_each_of_them_once(tiny_model):
    backend = LocalBackend([str(tiny_model.parent)])  # never started: nothing runs
    ids = [backend.submit(recipe(), options()) for _ in range(3)]
    backend.close()
    events = events_until_done(backend, ids, timeout=5)
    assert [(type(e), e.job_id) for e in events] == [(Cancelled, i) for i in ids]


def test_curves_answer_a_request(backend):
    backend.request_curves("DDIM", "tiny", 5)
    deadline = time.monotonic() + LONG
    while time.monotonic() < deadline:
        event = backend.next_event(0.1)
        if isinstance(event, Curves):
            break
    else:
        raise AssertionError("no Curves event")
    assert (event.scheduler, event.model_id, event.steps) == ("DDIM", "tiny", 5) and len(event.visited) == 5
    assert len(event.alphas_cumprod) == len(event.betas) == 1000


def test_the_local_backend_says_when_it_is_ready_and_where(tiny_model):
    backend = LocalBackend([str(tiny_model.parent)], defaults=options())
    backend.start()
    try:
        statuses = []
        while not any(s.state == "ready" for s in statuses):
            event = backend.next_event(LONG)
            assert event is not None
            if isinstance(event, Status):
                statuses.append(event)
    finally:
        backend.close()
    assert statuses[0].state == "starting" and statuses[-1].placement == "CPU, fp32"
