"""``LocalBackend``: the engine on this machine, behind the backend protocol.

One long-lived worker thread owns the engine (and imports torch when it starts, so a window can
show before that). Jobs reach it through a queue; each has a ``threading.Event`` the engine checks
at every step, so a cancel takes effect within one step. Events go out through another queue, in
order, and every job ends with exactly one terminal event, also the ones still queued at close.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app.backend.local.discovery import discover, resolve_model
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
    ModelHashed,
    ModelHashing,
    ModelsChanged,
    Progress,
    Started,
    Status,
)
from desktop_app.core.models import ModelCatalog, ModelInfo, ModelLoadError
from desktop_app.core.options import DEFAULT_OPTIONS, RunOptions
from desktop_app.core.recipe import Recipe

log = logging.getLogger(__name__)
_ids = itertools.count(1)


@dataclass
class _Job:
    id: str
    recipe: Recipe
    options: RunOptions
    cancel: threading.Event = field(default_factory=threading.Event)


def failure(exc: BaseException) -> tuple[str, str]:
    """(kind, message for the user) for an exception that ended a job."""
    from desktop_app.backend.local.checkpoint_facts import PredictionTypeUnknown
    from desktop_app.backend.local.device import DeviceError
    from desktop_app.backend.local.generate import InvalidRequest
    from desktop_app.backend.local.job_add_ons import AddOnError
    from desktop_app.backend.local.performance import out_of_memory

    if isinstance(exc, AddOnError):
        return "model", f"An add-on could not be used: {exc}"
    if isinstance(exc, PredictionTypeUnknown):
        return "prediction", f"The model could not be used: {exc}"
    if isinstance(exc, ModelLoadError):
        return "model", f"The model could not be used: {exc}"
    if isinstance(exc, InvalidRequest):
        return "invalid", str(exc)
    # what to do is said by each front end with its own controls (the window's Settings, a command's options)
    if isinstance(exc, DeviceError):
        return "device", f"{exc}."
    if out_of_memory(exc):
        return "memory", ("The device ran out of memory, also in low-VRAM mode. Try a smaller size or batch, "
                          "close other programs, or use the CPU.")
    text = str(exc) or type(exc).__name__
    return "internal", f"Generation failed ({type(exc).__name__}: {text}). Details are in the log file."


class LocalBackend:
    name = "This computer"

    def __init__(self, model_paths: list[Path | str] = (), *, defaults: RunOptions = DEFAULT_OPTIONS,
                 engine_factory: Callable[..., object] | None = None, leave_a_core: bool = False,
                 app_roots: list[Path | str] = ()):
        self._model_paths = [str(p) for p in model_paths]
        self._app_roots = [str(p) for p in app_roots]
        self.defaults = defaults  # where "ready" is measured and preloads go
        self._engine_factory = engine_factory
        self._leave_a_core = leave_a_core
        self._events: queue.Queue[Event] = queue.Queue()
        self._inbox: queue.Queue[tuple[str, object]] = queue.Queue()
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._curves_wanted: tuple[str, str, int] | None = None
        self._thread: threading.Thread | None = None
        self._catalog = discover(self._model_paths, self._app_roots)

    # ---- the protocol (any thread) ------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None and not self._stopping.is_set():
            self._thread = threading.Thread(target=self._serve, name="engine")
            self._thread.start()

    def models(self) -> ModelCatalog:
        return self._catalog

    def refresh_models(self) -> None:
        self._catalog = discover(self._model_paths, self._app_roots)
        self._inbox.put(("paths", (list(self._model_paths), list(self._app_roots))))  # the engine lists again too
        self._events.put(ModelsChanged(self._catalog))

    def set_model_paths(self, model_paths: list[Path | str], app_roots: list[Path | str] | None = None) -> None:
        """Folders to look for models in besides the app's own, and other apps' roots used in place
        (this machine's backend only)."""
        self._model_paths = [str(p) for p in model_paths]
        if app_roots is not None:
            self._app_roots = [str(p) for p in app_roots]
        self.refresh_models()

    def describe(self, model_id: str) -> ModelInfo:
        """By id, or by path (a checkpoint file the catalog lists answers with its listed id)."""
        from desktop_app.backend.local.catalog import listed_file

        return (self._catalog.find(model_id) or listed_file(self._catalog, model_id)
                or resolve_model(model_id, self._model_paths, self._app_roots))

    def submit(self, recipe: Recipe, options: RunOptions) -> str:
        job = _Job(f"local-{next(_ids)}", recipe, options)
        with self._lock:
            self._jobs[job.id] = job
        self._inbox.put(("job", job))
        return job.id

    def cancel(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            job.cancel.set()

    def preload(self, model_id: str, options: RunOptions) -> None:
        self._inbox.put(("load", (model_id, options)))

    def request_curves(self, scheduler: str, model_id: str, steps: int) -> None:
        with self._lock:
            self._curves_wanted = (scheduler, model_id, steps)
        self._inbox.put(("curves", None))

    def next_event(self, timeout: float | None = None) -> Event | None:
        return next_from(self._events, timeout)

    def close(self) -> None:
        self._stopping.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel.set()
        self._inbox.put(("stop", None))
        if self._thread is not None:
            self._thread.join()
        self._cancel_leftovers()

    # ---- the worker thread ----------------------------------------------------------------------
    def _serve(self) -> None:
        engine = self._make_engine()
        self._serve_curves()  # the plot first: loading a large model takes a while
        while True:
            kind, item = self._inbox.get()
            if kind == "stop":
                break
            try:
                if kind == "job":
                    self._run_job(engine, item)
                elif kind == "curves":
                    self._serve_curves()
                elif kind == "paths" and engine is not None:
                    engine.set_folders(*item)
                elif kind == "load" and engine is not None and not self._stopping.is_set():
                    self._preload(engine, *item)
            except Exception:  # a bug here must not leave the queue without its thread
                log.exception("the engine thread failed on %s", kind)
                if kind == "job":
                    self._end(item, Failed(item.id, "An internal error stopped this job. Details are in the log file."))
        self._cancel_leftovers()
        if engine is not None:
            engine.close()

    def _make_engine(self):
        self._events.put(Status("starting", "Starting the engine (loading PyTorch)…"))
        try:
            from desktop_app.backend.local.engine import Engine

            engine = (self._engine_factory or Engine)(self._model_paths, on_hash=self._hashed,
                                                      on_hash_progress=self._hashing, app_roots=self._app_roots)
        except Exception as exc:  # a broken torch install
            log.error("the engine could not start: %s", exc, exc_info=True)
            self._events.put(Status("error", f"The engine could not start: {exc}. Details are in the log file."))
            return None
        from desktop_app.backend.local import device as devices

        try:
            placement = devices.choose(self.defaults.device, self.defaults.precision)
        except devices.DeviceError as exc:  # each job says so too, with its own options
            log.info("the default device cannot be used: %s", exc)
            self._events.put(Status("error", f"{exc}. Choose another device in Settings.",
                                    accelerators=devices.accelerators()))
            return engine
        if placement.device.type == "cpu" and self._leave_a_core:
            _leave_a_core_for_the_window()
        text = placement.describe()
        log.info("engine ready on %s", text)
        self._events.put(Status("ready", f"Ready · {text}", text, accelerators=devices.accelerators()))
        return engine

    def _hashed(self, info: ModelInfo, sha256: str) -> None:
        self._events.put(ModelHashed(info.id, str(info.path), sha256[:10], sha256))

    def _hashing(self, info: ModelInfo, done: int, total: int) -> None:
        self._events.put(ModelHashing(info.id, str(info.path), done, total))

    def _preload(self, engine, model_id: str, options: RunOptions) -> None:
        self._events.put(Status("loading", f"Loading model {model_id}…"))
        try:
            loaded = engine.load(model_id, options)
        except Exception as exc:  # reported when a job uses it; discovery lists the problem too
            log.info("preloading %s failed: %s", model_id, exc)
            self._events.put(Status("ready", f"Model {model_id} could not be loaded"))
            return
        self._events.put(Status("ready", f"Ready · {loaded.placement.describe()}", loaded.placement.describe()))

    def _serve_curves(self) -> None:
        with self._lock:
            wanted, self._curves_wanted = self._curves_wanted, None
        if wanted is None:
            return
        scheduler, model_id, steps = wanted
        try:
            from desktop_app.backend.local.schedulers import schedule_curves

            info = self.describe(model_id)
            alphas, betas, visited = schedule_curves(scheduler, info.scheduler_config, steps)
        except Exception as exc:  # a plot is never worth a failed job
            log.info("schedule curves for %s on %s failed: %s", scheduler, model_id, exc)
            return
        self._events.put(Curves(scheduler, model_id, steps, alphas, betas, visited))

    def _run_job(self, engine, job: _Job) -> None:
        if job.cancel.is_set():
            self._end(job, Cancelled(job.id))
            return
        if engine is None:
            self._end(job, Failed(job.id, "The engine is not running on the chosen device.", "device"))
            return
        self._events.put(Started(job.id))
        placement = ""
        try:
            self._events.put(Status("loading", f"Loading model {job.recipe.model.id}…"))
            loaded = engine.load_for(job.recipe, job.options)  # at once when it is loaded already
            placement = loaded.placement.describe()
            self._events.put(Status("busy", f"Generating · {placement}", placement))
            result = self._generate(engine, job, placement)
        except Exception as exc:  # every error ends the job; the thread lives on
            kind, message = failure(exc)
            if kind == "internal":
                log.error("job %s failed", job.id, exc_info=True)
            else:
                log.info("job %s failed: %s", job.id, exc)
            self._end(job, Failed(job.id, message, kind))
        else:
            if result is None:
                self._end(job, Cancelled(job.id))
            else:
                self._end(job, Finished(job.id, result))
        self._events.put(Status("ready", f"Ready · {placement}" if placement else "Ready", placement))

    def _generate(self, engine, job: _Job, placement: str) -> JobSummary | None:
        steps = engine.generate(job.recipe, job.options, job.cancel)
        warming = False
        while True:
            try:
                update = next(steps)
            except StopIteration as stop:
                result = stop.value
                break
            if update.phase == "warm-up":
                self._events.put(Status("compiling", "Fast mode: compiling the model for this size (the first time "
                                                     "takes a few minutes; later launches reuse the cache)…", placement))
                warming = True
            elif warming:
                self._events.put(Status("busy", f"Generating · {placement}", placement))
                warming = False
            self._events.put(Progress(job.id, update.step, update.total, update.elapsed, update.its_per_sec,
                                      update.preview, update.phase))
            if self._curves_wanted is not None:
                self._serve_curves()
        if result.cancelled:  # a cancel that came after the last step still gets the pictures made
            return None
        run = {"device": result.device, "precision": result.precision, "timings": dict(result.timings),
               "passes": list(result.passes)}
        digest = engine.hasher.known(result.model)
        for index, image in enumerate(result.images):
            self._events.put(ImageMade(job.id, GeneratedImage(image, result.recipe, index, result.model, digest, run,
                                                              lora_hashes=dict(result.lora_hashes),
                                                              ti_hashes=dict(result.ti_hashes))))
        return JobSummary(result.recipe, tuple(result.seeds), tuple(result.warnings), tuple(result.notes),
                          dict(result.timings), result.device, result.precision)

    def _end(self, job: _Job, event: Event) -> None:
        with self._lock:
            if self._jobs.pop(job.id, None) is None:
                return  # already ended: one terminal event per job
        self._events.put(event)

    def _cancel_leftovers(self) -> None:
        with self._lock:
            leftover = list(self._jobs.values())
        for job in leftover:  # never started: each still gets its one terminal event
            self._end(job, Cancelled(job.id))


def _leave_a_core_for_the_window() -> None:
    """On the CPU, use one thread fewer than there are cores: the window stays responsive, and
    torch's spinning worker threads slow down badly when they outnumber the free cores."""
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1)))
