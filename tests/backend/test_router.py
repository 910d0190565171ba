"""This computer and a server in one queue: each job goes to the backend that has its model."""

from __future__ import annotations

import dataclasses
import time

from desktop_app.backend.fake import FakeBackend, fake_model
from desktop_app.backend.local import LocalBackend
from desktop_app.backend.router import BackendRouter
from desktop_app.core.events import TERMINAL, Finished, ImageMade, ModelsChanged
from desktop_app.core.recipe import Recipe
from tests.backend.helpers import options


def _drain(router, ids, timeout=120):
    seen, open_jobs, deadline = [], set(ids), time.monotonic() + timeout
    while open_jobs and time.monotonic() < deadline:
        event = router.next_event(0.1)
        if event is not None:
            seen.append(event)
            if isinstance(event, TERMINAL):
                open_jobs.discard(event.job_id)
    assert not open_jobs, f"no end for {open_jobs}"
    return seen


def test_local_and_remote_jobs_share_one_queue_and_each_runs_where_its_model_is(tiny_model):
    server = FakeBackend([fake_model("big-xl", native=128)])
    server.name = "ComfyUI at gpu-box:8188"
    router = BackendRouter({"local": LocalBackend([str(tiny_model.parent)]), "gpu-box": server})
    try:
        router.start()
        listed = {m.id: m.location for m in router.models().models}
        assert listed["tiny"] == "" and listed["big-xl"] == "ComfyUI at gpu-box:8188"
        here = router.submit(Recipe.of("a red circle", model_id="tiny", scheduler="DDIM", steps=2, seed=1), options())
        there = router.submit(Recipe.of("a castle", model_id="big-xl", steps=2, seed=5), options())
        events = _drain(router, [here, there])
        sizes = {e.job_id: e.image.image.size for e in events if isinstance(e, ImageMade)}
        assert sizes == {here: (64, 64), there: (128, 128)}
        assert [type(e) for e in events if getattr(e, "job_id", None) == there][-1] is Finished
        assert [r.model.id for r, _ in server.submitted] == ["big-xl"]  # only its own job went to the server
    finally:
        router.close()


def test_a_pinned_job_goes_where_it_was_pinned_and_model_lists_merge(tiny_model):
    one, two = FakeBackend([fake_model("a")]), FakeBackend([fake_model("a"), fake_model("b")])
    router = BackendRouter({"one": one, "two": two})
    try:
        router.start()
        assert [m.id for m in router.models().models] == ["a", "b"]  # "a" once: the first backend offers it
        job = router.submit(Recipe.of("x", model_id="a", steps=1), options(), on="two")
        _drain(router, [job])
        assert (len(one.submitted), len(two.submitted)) == (0, 1)
        two.catalog = dataclasses.replace(two.catalog, models=[*two.catalog.models, fake_model("c")])
        two.refresh_models()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            event = router.next_event(0.1)
            if isinstance(event, ModelsChanged):
                break
        assert [m.id for m in event.catalog.models] == ["a", "b", "c"]  # the merged list, not the server's alone
    finally:
        router.close()


def test_closing_ends_every_queued_job_once():
    slow = FakeBackend([fake_model("a")])
    slow.hold_at = 1
    router = BackendRouter({"one": slow})
    router.start()
    ids = [router.submit(Recipe.of("x", model_id="a", steps=3), options()) for _ in range(3)]
    router.close()
    ends = [e for e in iter(lambda: router.next_event(0), None) if isinstance(e, TERMINAL)]
    assert sorted(e.job_id for e in ends) == sorted(ids) and len(ends) == 3
