"""The thread between the window and a backend: it knows only the backend protocol.

It starts the backend, takes its events in order and turns them into Qt signals carrying the job
id; finished pictures are saved here, through the gallery ``Library``, so the GUI thread never
encodes or writes a file. Previews and images travel as ``QImage`` (safe to build off the GUI
thread); the GUI makes pixmaps from them. Every job gets exactly one of ``job_finished``,
``job_failed`` or ``job_cancelled``, also when the window closes with jobs still queued.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import weakref
from pathlib import Path

import numpy as np
from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from desktop_app.backend.protocol import Backend
from desktop_app.core.events import (
    TERMINAL,
    Cancelled,
    Curves,
    Failed,
    Finished,
    ImageMade,
    ModelHashed,
    ModelHashing,
    ModelsChanged,
    Progress,
    Started,
    Status,
)
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import Recipe
from desktop_app.gallery.library import Library

log = logging.getLogger(__name__)
# What to do about a failed job, with the window's controls (a backend's message says what went wrong)
WINDOW_ADVICE = {"device": "Choose another device in Settings.", "memory": "The device can be chosen in Settings."}
_bridges: weakref.WeakSet[BackendBridge] = weakref.WeakSet()


def running_bridges() -> list[BackendBridge]:
    """Bridge threads still running (tests assert there are none left)."""
    return [b for b in list(_bridges) if b.isRunning()]


def to_qimage(array: np.ndarray) -> QImage:
    """(H, W, 3) uint8 → a QImage that owns its pixels."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width, _ = array.shape
    return QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class BackendBridge(QThread):
    """Every public method is safe to call from the GUI thread."""

    state_changed = Signal(str)  # a short text for the status bar: "Loading model …", "Ready"
    engine_ready = Signal(str)  # where jobs run, e.g. "CPU, fp32"
    engine_error = Signal(str)  # the backend cannot run jobs as set up (e.g. an unavailable device)
    accelerators_known = Signal(object)  # tuple of the GPU kinds the backend can use ("cuda", "mps"); () for none
    job_started = Signal(str)
    progress = Signal(str, int, int, float, float)  # job id, step, total, it/s, seconds left
    preview = Signal(str, QImage)
    image_ready = Signal(str, int, QImage, str)  # job id, index in the job, image, saved path ("" if not saved)
    image_saved = Signal(str, int)  # saved path, its row in the gallery index
    save_failed = Signal(str, str)
    job_finished = Signal(str, object)  # job id, JobSummary (with the saved paths)
    job_failed = Signal(str, str)
    job_cancelled = Signal(str)
    curves_ready = Signal(object, object, object, object)  # (scheduler, steps), ᾱ, β, visited timesteps
    models_changed = Signal(object)  # ModelCatalog
    model_hashed = Signal(str, str, str)  # model id, path, SHA-256 (its first 10 digits: the "Model hash")
    hash_progress = Signal(str, str, float)  # model id, path, fraction done
    job_question = Signal(str, str)  # job id, the kind of its failure when the user's answer can fix it

    def __init__(self, backend: Backend, library: Library, parent=None):
        super().__init__(parent)
        self.setObjectName("bridge")
        self.backend = backend
        self.library = library
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._output: dict[str, Path] = {}  # job id → the output folder when it was queued
        self._saved: dict[str, list[str]] = {}
        self._open: set[str] = set()  # jobs without their terminal signal yet
        _bridges.add(self)

    # ---- GUI-thread API ----------------------------------------------------------------------
    def submit(self, recipe: Recipe, options: RunOptions, output_dir: Path) -> str:
        with self._lock:  # registered before this thread can see any of the job's events
            job_id = self.backend.submit(recipe, options)
            self._output[job_id] = Path(output_dir)
            self._open.add(job_id)
        return job_id

    def cancel(self, job_id: str) -> None:
        self.backend.cancel(job_id)

    def request_curves(self, scheduler: str, model_id: str, steps: int) -> None:
        self.backend.request_curves(scheduler, model_id, steps)

    def preload(self, model_id: str, options: RunOptions) -> None:
        self.backend.preload(model_id, options)

    def stop(self) -> None:
        """Close the backend (cancelling everything) and end the thread; call wait() afterwards."""
        self._stopping.set()

    # ---- the thread ----------------------------------------------------------------------------
    def run(self) -> None:  # noqa: D102 - QThread entry point
        threading.current_thread().name = "bridge"
        if not self._stopping.is_set():
            self.backend.start()
        while not self._stopping.is_set():
            event = self.backend.next_event(0.05)
            if event is not None:
                self._dispatch(event)
        self.backend.close()  # every job still open gets its terminal event now
        while (event := self.backend.next_event(0)) is not None:
            self._dispatch(event)
        with self._lock:
            unanswered = sorted(self._open)
        for job_id in unanswered:  # a backend that broke its promise: the window still hears an end
            log.info("job %s had no terminal event from the backend; reported cancelled", job_id)
            self._end(job_id)
            self.job_cancelled.emit(job_id)

    def _dispatch(self, event) -> None:
        if isinstance(event, Status):
            self._status(event)
        elif isinstance(event, Started):
            self.job_started.emit(event.job_id)
        elif isinstance(event, Progress):
            if event.phase != "warm-up":
                self.progress.emit(event.job_id, event.step, event.total, event.its_per_sec, event.eta_seconds)
            if event.preview is not None:
                self.preview.emit(event.job_id, to_qimage(event.preview))
        elif isinstance(event, ImageMade):
            self._save(event)
        elif isinstance(event, TERMINAL):
            self._terminal(event)
        elif isinstance(event, Curves):
            self.curves_ready.emit((event.scheduler, event.steps), event.alphas_cumprod, event.betas, event.visited)
        elif isinstance(event, ModelsChanged):
            self.models_changed.emit(event.catalog)
        elif isinstance(event, ModelHashed):
            self.library.fill_model_hash(event.path, event.digest)
            self.model_hashed.emit(event.model_id, event.path, event.sha256)
        elif isinstance(event, ModelHashing):
            self.hash_progress.emit(event.model_id, event.path, event.fraction)

    def _status(self, event: Status) -> None:
        self.state_changed.emit(event.text)
        if event.accelerators is not None:
            self.accelerators_known.emit(tuple(event.accelerators))
        if event.state == "ready" and event.placement:
            self.engine_ready.emit(event.placement)
        elif event.state == "error":
            self.engine_error.emit(event.text)

    def _save(self, event: ImageMade) -> None:
        with self._lock:
            folder = self._output.get(event.job_id)
        path = ""
        try:
            saved = self.library.save(event.image, folder)
            path = str(saved.path)
            if saved.image_id is not None:
                self.image_saved.emit(path, saved.image_id)
        except OSError as exc:  # SaveError / DiskFullError carry a message for the user
            log.info("saving image %d of job %s failed: %s", event.image.index, event.job_id, exc)
            self.save_failed.emit(event.job_id, exc.strerror or str(exc))
        with self._lock:
            self._saved.setdefault(event.job_id, []).append(path)
        rgb = np.asarray(event.image.image.convert("RGB"))
        self.image_ready.emit(event.job_id, event.image.index, to_qimage(rgb), path)

    def _terminal(self, event) -> None:
        if not self._end(event.job_id):
            return  # one terminal signal per job
        with self._lock:
            saved = tuple(self._saved.pop(event.job_id, []))
        if isinstance(event, Finished):
            self.job_finished.emit(event.job_id, dataclasses.replace(event.summary, saved=saved))
        elif isinstance(event, Failed):
            if event.kind == "prediction":  # an SD 2.x file that does not say: the window asks
                self.job_question.emit(event.job_id, event.kind)
            self.job_failed.emit(event.job_id, f"{event.message} {WINDOW_ADVICE.get(event.kind, '')}".strip())
        elif isinstance(event, Cancelled):
            self.job_cancelled.emit(event.job_id)

    def _end(self, job_id: str) -> bool:
        """Forget a job; False when it had ended already (or was never submitted through here)."""
        with self._lock:
            self._output.pop(job_id, None)
            if job_id not in self._open:
                return False
            self._open.discard(job_id)
            return True
