"""Fixtures for the ComfyUI backend tests: fake servers on loopback and backends talking to them.

Each fake and each backend is stopped at the end of its test (no thread outlives a test), and the
backend's journal lives in the test's temporary home.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from desktop_app.backend.remote.comfyui import DEFAULT_LIMITS, ComfyUIBackend, Limits, Timing
from desktop_app.core.events import TERMINAL, Event, JobEvent
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import Recipe

from .fake_comfy import FakeComfy
from .recording import TRANSCRIPTS

FAST = Timing(poll_s=0.05, stats_s=1.0, safety_s=0.5, backoff_initial_s=0.05, backoff_max_s=0.2,
              handover_after_s=0.6, cancel_grace_s=2.0)
MODEL = "sd15-random.safetensors"


def recipe(**flat) -> Recipe:  # type: ignore[no-untyped-def]
    values = {"model_id": MODEL, "scheduler": "Euler", "steps": 4, "width": 64, "height": 64, "seed": 511,
              "negative_prompt": "blurry"}
    values.update(flat)
    return Recipe.of("a red circle on a blue background", **values)


OPTIONS = RunOptions(preview="latent", preview_max_fps=0)


@dataclass
class Events:
    """Everything a backend said, split into one job's events and the rest."""

    backend: ComfyUIBackend
    seen: list[Event] = field(default_factory=list)

    def until_done(self, job_id: str, timeout: float = 10.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        while True:
            mine = self.of(job_id)
            if mine and isinstance(mine[-1], TERMINAL):
                return mine
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"job {job_id} did not end in {timeout} s; it said {mine}")
            event = self.backend.next_event(timeout=min(left, 0.2))
            if event is not None:
                self.seen.append(event)

    def until(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.backend.next_event(timeout=0.1)
            if event is not None:
                self.seen.append(event)
                if predicate(event):
                    return event
        raise AssertionError(f"no such event in {timeout} s; saw {self.seen}")

    def of(self, job_id: str) -> list[Event]:
        return [e for e in self.seen if isinstance(e, JobEvent) and e.job_id == job_id]

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            event = self.backend.next_event(timeout=0.05)
            if event is not None:
                self.seen.append(event)


@pytest.fixture(autouse=True)
def _transcripts_present() -> None:
    if not TRANSCRIPTS.is_dir():
        # like the other tools' images (tests/gallery), they are read from shared/ beside the checkout, never copied in
        pytest.skip(f"the recorded ComfyUI transcripts are not here: {TRANSCRIPTS} (shared/ beside the repository)")


@pytest.fixture
def make_fake() -> Iterator[Callable[..., FakeComfy]]:
    fakes: list[FakeComfy] = []

    def make(**knobs) -> FakeComfy:  # type: ignore[no-untyped-def]
        fake = FakeComfy(**knobs).start()
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.stop()


@pytest.fixture
def make_backend() -> Iterator[Callable[..., tuple[ComfyUIBackend, Events]]]:
    backends: list[ComfyUIBackend] = []

    def make(*fakes: FakeComfy, limits: Limits = DEFAULT_LIMITS, timing: Timing = FAST, wait: bool = True,
             tokens: dict[str, str] | None = None) -> tuple[ComfyUIBackend, Events]:
        backend = ComfyUIBackend([f.url for f in fakes], tokens, limits=limits, timing=timing)
        backends.append(backend)
        backend.start()
        if wait:
            assert backend.wait_ready(5), backend.servers()
            deadline = time.monotonic() + 5
            while not all(s.online for s in backend.servers()) and time.monotonic() < deadline:
                time.sleep(0.02)
        return backend, Events(backend)

    yield make
    for backend in backends:
        backend.close()
