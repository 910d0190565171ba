"""The one long-lived thread that owns the engine, and the jobs it runs.

The engine (and torch with it) is created on this thread, after the window is up. Jobs reach it
through a thread-safe queue; each job has a ``threading.Event`` the engine checks at every step,
so Cancel takes effect within one step. Every job ends with exactly one of ``job_finished``,
``job_failed`` or ``job_cancelled``, each carrying the job id. Previews and images travel as
``QImage`` (safe to build off the GUI thread); the GUI makes pixmaps from them.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from desktop_app.engine.request import GenerationRequest

log = logging.getLogger(__name__)

_job_ids = itertools.count(1)
_threads: weakref.WeakSet[EngineThread] = weakref.WeakSet()


def running_engine_threads() -> list[EngineThread]:
    """Engine threads still running (tests assert there are none left)."""
    return [t for t in list(_threads) if t.isRunning()]


@dataclass
class Job:
    request: GenerationRequest
    output_dir: Path
    id: int = field(default_factory=lambda: next(_job_ids))
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"  # queued → running → finished | failed | cancelled


@dataclass(frozen=True)
class EngineConfig:
    device: str = "auto"
    precision: str = "auto"
    extra_model_paths: tuple[str, ...] = ()
    preview_max_fps: float = 20.0
    fast_mode: bool = False
    low_vram: bool = False


@dataclass(frozen=True)
class JobSummary:
    """What the GUI keeps of a finished job (plain data; the images came with image_ready)."""

    request: GenerationRequest  # resolved: seed and size filled in
    seeds: list[int]
    saved: list[str]
    warnings: list[str]
    notes: list[str]
    timings: dict[str, float]
    device: str
    precision: str


def to_qimage(array: np.ndarray) -> QImage:
    """(H, W, 3) uint8 → a QImage that owns its pixels."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width, _ = array.shape
    return QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def _user_message(exc: BaseException) -> str:
    from desktop_app.engine.models import ModelLoadError

    if isinstance(exc, ModelLoadError):
        return f"The model could not be used: {exc}"
    text = str(exc) or type(exc).__name__
    if "out of memory" in text.lower():
        return ("The device ran out of memory. Try a smaller size or batch, close other programs, "
                "or choose the CPU in Settings.")
    if type(exc).__name__ in ("InvalidRequest", "DeviceError"):
        return text
    return f"Generation failed ({type(exc).__name__}: {text}). Details are in the log file."


def _leave_a_core_for_the_window() -> None:
    """On the CPU, use one thread fewer than there are cores: the window stays responsive, and
    torch's spinning worker threads slow down badly when they outnumber the free cores."""
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1)))


class EngineThread(QThread):
    """Runs jobs in order on one engine; every public method is safe to call from the GUI thread."""

    state_changed = Signal(str)  # a short text for the status bar: "Loading model …", "Ready"
    engine_ready = Signal(str)  # the placement, e.g. "CPU, fp32"
    engine_error = Signal(str)  # the engine could not start (e.g. an unavailable device)
    job_started = Signal(int)
    progress = Signal(int, int, int, float, float)  # job id, step, total, it/s, seconds left
    preview = Signal(int, QImage)
    image_ready = Signal(int, int, QImage, str)  # job id, index in the job, image, saved path ("" if not saved)
    save_failed = Signal(int, str)
    job_finished = Signal(int, object)  # job id, JobSummary
    job_failed = Signal(int, str)
    job_cancelled = Signal(int)
    curves_ready = Signal(object, object, object, object)  # (scheduler, steps), ᾱ, β, visited timesteps

    def __init__(self, config: EngineConfig, parent=None):
        super().__init__(parent)
        self.setObjectName("engine")
        self._config = config
        self._preload: str | None = None
        self._inbox: queue.Queue = queue.Queue()
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._curves_wanted: tuple | None = None
        self.placement = ""
        _threads.add(self)

    # ---- GUI-thread API ---------------------------------------------------------------------
    def submit(self, job: Job) -> int:
        with self._lock:
            self._jobs[job.id] = job
        self._inbox.put(("job", job))
        return job.id

    def cancel(self, job_id: int) -> None:
        """Cancel a running job within one step, or a queued one before it starts."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            job.cancel.set()

    def cancel_all(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel.set()

    def ask_curves(self, scheduler: str, scheduler_config: dict, steps: int) -> None:
        """Compute the noise-schedule curves for the plot (between steps when a job runs)."""
        with self._lock:
            self._curves_wanted = (scheduler, scheduler_config, steps)
        self._inbox.put(("curves", None))

    def start_loading(self, model_id: str | None) -> None:
        """Start the thread; it builds the engine, then loads ``model_id`` (if any) before any job."""
        self._preload = model_id
        self.start()

    def preload(self, model_id: str) -> None:
        self._inbox.put(("load", model_id))

    def reconfigure(self, config: EngineConfig) -> None:
        """A new device, precision or model folders: the engine is rebuilt before the next job."""
        self._inbox.put(("config", config))

    def stop(self) -> None:
        """Cancel everything and end the thread; call wait() afterwards."""
        self._stopping.set()
        self.cancel_all()
        self._inbox.put(("stop", None))

    # ---- the thread ---------------------------------------------------------------------------
    def run(self) -> None:  # noqa: D102 - QThread entry point
        threading.current_thread().name = "engine"  # for the log file
        engine = self._make_engine()
        self._serve_curves()  # the plot first: loading a large model takes a while
        if engine is not None and self._preload and not self._stopping.is_set():
            self._load(engine, self._preload)
        while True:
            kind, item = self._inbox.get()
            if kind == "stop":
                break
            try:
                engine = self._handle(engine, kind, item)
            except Exception:  # a bug here must not leave the queue without its thread
                log.exception("the engine thread failed on %s", kind)
                if kind == "job":
                    self._end(item, "failed", "An internal error stopped this job. Details are in the log file.")
        with self._lock:
            leftover = list(self._jobs.values())
        for job in leftover:  # never started: each still gets its one terminal signal
            self._end(job, "cancelled")

    def _handle(self, engine, kind: str, item):
        """One command from the inbox; returns the engine to use from now on."""
        if kind == "config" and item != self._config:
            self._config = item
            return self._make_engine()
        if kind == "curves":
            self._serve_curves()
        elif kind == "load" and engine is not None and not self._stopping.is_set():
            self._load(engine, item)
        elif kind == "job":
            self._run_job(engine, item)
        return engine

    def _serve_curves(self) -> None:
        with self._lock:
            wanted, self._curves_wanted = self._curves_wanted, None
        if wanted is None:
            return
        scheduler, config, steps = wanted
        try:
            from desktop_app.engine.schedulers import schedule_curves

            alphas, betas, visited = schedule_curves(scheduler, config, steps)
        except Exception:  # a plot is never worth a failed job
            log.exception("schedule curves for %s failed", scheduler)
            return
        self.curves_ready.emit((scheduler, steps), alphas, betas, visited)

    def _make_engine(self):
        self.state_changed.emit("Starting the engine (loading PyTorch)…")
        try:
            from desktop_app.engine import Engine
            from desktop_app.engine.performance import Performance

            performance = Performance(fast=self._config.fast_mode, low_vram=self._config.low_vram)
            engine = Engine(self._config.device, self._config.precision, list(self._config.extra_model_paths), performance)
        except Exception as exc:  # DeviceError, or a broken torch install
            log.exception("the engine could not start")
            self.engine_error.emit(f"The engine could not start: {exc}. Choose another device in Settings.")
            self.state_changed.emit("Engine not available")
            return None
        if engine.placement.device.type == "cpu":
            _leave_a_core_for_the_window()
        self.placement = engine.placement.describe()
        log.info("engine ready on %s", self.placement)
        self.engine_ready.emit(self.placement)
        self.state_changed.emit(f"Ready · {self.placement}")
        return engine

    def _load(self, engine, model_id: str) -> None:
        self.state_changed.emit(f"Loading model {model_id}…")
        try:
            engine.load(model_id)
        except Exception as exc:  # reported when a job uses it; discovery lists the problem too
            log.warning("preloading %s failed: %s", model_id, exc)
            self.state_changed.emit(f"Model {model_id} could not be loaded")
            return
        self.state_changed.emit(f"Ready · {self.placement}")

    def _run_job(self, engine, job: Job) -> None:
        if job.cancel.is_set():
            self._end(job, "cancelled")
            return
        if engine is None:
            self._end(job, "failed", "The engine is not running: choose a device that works in Settings.")
            return
        job.state = "running"
        self.job_started.emit(job.id)
        try:
            self.state_changed.emit(f"Loading model {job.request.model_id}…")
            engine.load(job.request.model_id)  # at once when it is loaded already
            self.state_changed.emit(f"Generating · {self.placement}")
            result = self._generate(engine, job)
        except Exception as exc:  # every error ends the job; the thread lives on
            log.exception("job %d failed", job.id)
            self._end(job, "failed", _user_message(exc))
        else:
            if result is None:
                log.info("job %d cancelled", job.id)
                self._end(job, "cancelled")
            else:
                log.info("job %d finished in %.2f s: %s", job.id, result.timings.get("total", 0.0), result.saved)
                self._end(job, "finished", result)
        self.state_changed.emit(f"Ready · {self.placement}")

    def _generate(self, engine, job: Job) -> JobSummary | None:
        steps = engine.generate(job.request, job.cancel, max_fps=self._config.preview_max_fps)
        warming = False
        while True:
            try:
                update = next(steps)
            except StopIteration as stop:
                result = stop.value
                break
            if update.phase == "warm-up":
                self.state_changed.emit("Fast mode: compiling the model for this size (the first time takes a few "
                                        "minutes; later launches reuse the cache)…")
                warming = True
                continue
            if warming:
                self.state_changed.emit(f"Generating · {self.placement}")
                warming = False
            left = update.eta_seconds
            self.progress.emit(job.id, update.step, update.total, update.its_per_sec, left)
            if update.preview is not None:
                self.preview.emit(job.id, to_qimage(update.preview))
            if self._curves_wanted is not None:
                self._serve_curves()
        if result.cancelled or job.cancel.is_set():
            return None
        saved = self._save(job, result)
        return JobSummary(result.request, list(result.seeds), saved, list(result.warnings), list(result.notes),
                          dict(result.timings), result.device, result.precision)

    def _save(self, job: Job, result) -> list[str]:
        from desktop_app.gallery.save import save_image

        saved = []
        extra = {"device": result.device, "precision": result.precision, "timings": result.timings}
        for index, image in enumerate(result.images):
            path = ""
            try:
                path = str(save_image(image, result.request, model=result.model, output_dir=job.output_dir,
                                      index_in_batch=index, extra=extra))
            except OSError as exc:  # SaveError / DiskFullError carry a message for the user
                log.warning("saving image %d of job %d failed: %s", index, job.id, exc)
                self.save_failed.emit(job.id, exc.strerror or str(exc))
            saved.append(path)
            rgb = np.asarray(image.convert("RGB"))
            self.image_ready.emit(job.id, index, to_qimage(rgb), path)
        return saved

    def _end(self, job: Job, state: str, payload: Any = None) -> None:
        with self._lock:
            if self._jobs.pop(job.id, None) is None:
                return  # already ended: one terminal signal per job
        job.state = state
        if state == "finished":
            self.job_finished.emit(job.id, payload)
        elif state == "failed":
            self.job_failed.emit(job.id, str(payload))
        else:
            self.job_cancelled.emit(job.id)


