"""The backend protocol: what the window and the command line may ask of whatever runs a job.

A backend lists models, describes one, takes a recipe with run options and returns a job id at
once, streams events (``desktop_app.core.events``) and cancels. Work happens on the backend's own
threads; ``next_event`` is the one way results come back, in order, and every job ends with
exactly one terminal event (``Finished``, ``Failed`` or ``Cancelled``), also when the backend is
closed with jobs still waiting.

The local backend (``desktop_app.backend.local``), a ComfyUI server, or a scripted fake all look
the same through it; the front ends get one injected by the entry point and never import an
implementation.
"""

from __future__ import annotations

import queue
from typing import Protocol, runtime_checkable

from desktop_app.core.events import Event
from desktop_app.core.models import ModelCatalog, ModelInfo
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import Recipe


@runtime_checkable
class Backend(Protocol):
    name: str  # for people: "This computer", "ComfyUI at gpu-box:8188"

    def start(self) -> None:
        """Begin working (threads, connections). Cheap to call; the heavy part happens in the background."""

    def models(self) -> ModelCatalog:
        """The models as last seen, at once (never waits on a disk scan or a server)."""

    def refresh_models(self) -> None:
        """Look for models again; a ``ModelsChanged`` event brings the new list."""

    def describe(self, model_id: str) -> ModelInfo:
        """One model by id (or, where the backend allows, by path); raises ``ModelLoadError``."""

    def submit(self, recipe: Recipe, options: RunOptions) -> str:
        """Queue a job; returns its id at once. Problems with it come back as a ``Failed`` event."""

    def cancel(self, job_id: str) -> None:
        """Stop a running job within a step, or drop a queued one; unknown ids are ignored."""

    def preload(self, model_id: str, options: RunOptions) -> None:
        """Get a model ready before the first job asks for it (a hint; may do nothing)."""

    def request_curves(self, scheduler: str, model_id: str, steps: int) -> None:
        """Ask for the noise-schedule curves for the plot; a ``Curves`` event answers."""

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting at most ``timeout`` seconds (None: until there is one)."""

    def close(self) -> None:
        """Cancel everything, stop the threads and wait for them; queued jobs each get ``Cancelled``."""


def next_from(events: queue.Queue, timeout: float | None) -> Event | None:
    """``next_event`` for a backend that keeps its events in a queue: the next one, or None after ``timeout``."""
    try:
        return events.get(timeout=timeout)
    except queue.Empty:
        return None
