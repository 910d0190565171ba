"""A scripted backend: the protocol's behaviour without a model, for fast window tests.

It keeps every promise of ``desktop_app.backend.protocol`` (jobs in order on a worker thread,
``Started`` → ``Progress`` → ``ImageMade`` → exactly one terminal event, cancel within a step,
queued jobs cancelled at close), and its pictures depend on the recipe (a colour from the seed,
the prompt's first word drawn nowhere, the requested size), so a test can check that what it
asked for is what came back. What a job does is scripted per test: ``fail`` / ``step_seconds``
/ ``hold`` (a job waits at that step until ``release()``).
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from desktop_app.backend.protocol import next_from
from desktop_app.core.events import (
    Cancelled,
    Curves,
    Event,
    Failed,
    Finished,
    GeneratedImage,
    ImageMade,
    JobSummary,
    ModelsChanged,
    Progress,
    Started,
    Status,
)
from desktop_app.core.models import ModelCatalog, ModelInfo, ModelLoadError
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import Recipe

_ids = itertools.count(1)


def fake_model(model_id: str = "fake", *, native: int = 64, classifier: dict[str, list[str]] | None = None,
               name: str | None = None, vocabulary: tuple[str, ...] = ()) -> ModelInfo:
    """A model description for the fake backend (no files behind it)."""
    return ModelInfo(
        id=model_id, name=name or f"Fake {model_id}", path=Path(f"/fake/{model_id}"),
        family="SD 1.x", pipeline_class="StableDiffusionPipeline", native_size=(native, native), latent_factor=8,
        latent_channels=4, scheduler_config={"num_train_timesteps": 1000, "beta_schedule": "scaled_linear"},
        classifier_labels=classifier or {}, vocabulary=vocabulary,
    )


def picture(recipe: Recipe, index: int) -> Image.Image:
    """The fake's picture for image ``index`` of ``recipe``: one colour from the seed, at the recipe's size."""
    own = recipe.for_image(index)
    digest = hashlib.sha256(f"{own.output.seed}|{own.prompt.text}".encode()).digest()
    return Image.new("RGB", (own.output.width or 64, own.output.height or 64), tuple(digest[:3]))


@dataclass
class _Job:
    id: str
    recipe: Recipe
    options: RunOptions
    cancel: threading.Event = field(default_factory=threading.Event)


class FakeBackend:
    name = "Fake backend"

    def __init__(self, models: list[ModelInfo] | None = None, *, errors: list[ModelLoadError] | None = None,
                 step_seconds: float = 0.0, fail: str = "", fail_kind: str = "internal"):
        self.catalog = ModelCatalog(models if models is not None else [fake_model()], errors or [])
        self.step_seconds = step_seconds
        self.fail, self.fail_kind = fail, fail_kind
        self.hold_at: int | None = None  # a job waits before this step until release()
        self.accelerators: tuple[str, ...] | None = None  # what the ready status says about GPUs
        self._released = threading.Event()
        self.submitted: list[tuple[Recipe, RunOptions]] = []
        self._events: queue.Queue[Event] = queue.Queue()
        self._inbox: queue.Queue = queue.Queue()
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    # ---- the protocol --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None and not self._closed.is_set():
            self._thread = threading.Thread(target=self._serve, name="fake-backend")
            self._thread.start()

    def models(self) -> ModelCatalog:
        return self.catalog

    def refresh_models(self) -> None:
        self._events.put(ModelsChanged(self.catalog))

    def describe(self, model_id: str) -> ModelInfo:
        found = self.catalog.find(model_id)
        if found is None:
            raise ModelLoadError(model_id, f"no model with this id; known models: {', '.join(m.id for m in self.catalog.models)}")
        return found

    def submit(self, recipe: Recipe, options: RunOptions) -> str:
        job = _Job(f"fake-{next(_ids)}", recipe, options)
        with self._lock:
            self._jobs[job.id] = job
            self.submitted.append((recipe, options))
        self._inbox.put(job)
        return job.id

    def cancel(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            job.cancel.set()

    def preload(self, model_id: str, options: RunOptions) -> None:
        pass

    def request_curves(self, scheduler: str, model_id: str, steps: int) -> None:
        betas = np.linspace(0.00085, 0.012, 1000)
        visited = np.linspace(999, 0, steps).round()
        self._events.put(Curves(scheduler, model_id, steps, np.cumprod(1 - betas), betas, visited))

    def next_event(self, timeout: float | None = None) -> Event | None:
        return next_from(self._events, timeout)

    def close(self) -> None:
        self._closed.set()
        self._released.set()
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            leftover = list(self._jobs)
        for job_id in leftover:
            self._end(job_id, Cancelled(job_id))

    # ---- scripting -------------------------------------------------------------------------------
    def release(self) -> None:
        self._released.set()

    # ---- the worker ----------------------------------------------------------------------------------
    def _serve(self) -> None:
        self._events.put(Status("ready", "Ready · fake", "fake", accelerators=self.accelerators))
        while (job := self._inbox.get()) is not None:
            self._run(job)

    def _run(self, job: _Job) -> None:
        if job.cancel.is_set():
            self._end(job.id, Cancelled(job.id))
            return
        self._events.put(Started(job.id))
        try:
            info = self.describe(job.recipe.model.id)
        except ModelLoadError as exc:
            self._end(job.id, Failed(job.id, f"The model could not be used: {exc}", "model"))
            return
        problems = job.recipe.validate(info) + job.options.problems()
        if problems:
            self._end(job.id, Failed(job.id, "; ".join(map(str, problems)), "invalid"))
            return
        width, height = job.recipe.output.size_for(info)
        recipe = job.recipe.with_(seed=job.recipe.output.seed if job.recipe.output.seed is not None else 1234,
                                  width=width, height=height)
        total = recipe.sampling.steps
        for step in range(1, total + 1):
            if self.hold_at == step:
                self._released.wait()
            if job.cancel.wait(self.step_seconds) if self.step_seconds else job.cancel.is_set():
                self._end(job.id, Cancelled(job.id))
                return
            preview = None
            if job.options.preview != "off":
                preview = np.full((height // 8, width // 8, 3), int(255 * step / total), dtype=np.uint8)
            self._events.put(Progress(job.id, step, total, step * 0.01, 100.0, preview))
        if self.fail:
            self._end(job.id, Failed(job.id, self.fail, self.fail_kind))
            return
        seeds = tuple(recipe.output.seed + k for k in range(recipe.output.batch_size))
        for index in range(recipe.output.batch_size):
            image = GeneratedImage(picture(recipe, index), recipe, index, info, "", {"device": "fake", "precision": "fp32"})
            self._events.put(ImageMade(job.id, image))
        self._end(job.id, Finished(job.id, JobSummary(recipe, seeds, (), (), {"total": total * 0.01}, "fake", "fp32")))

    def _end(self, job_id: str, event: Event) -> None:
        with self._lock:
            if self._jobs.pop(job_id, None) is None:
                return
        self._events.put(event)
