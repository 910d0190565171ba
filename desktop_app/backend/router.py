"""Several backends behind one protocol: this computer and ComfyUI servers in one queue.

The window and the command line see a single backend. Each model is offered by the backend that
has it (``ModelInfo.location`` says where: "" is this computer), and a job goes to the backend of
its model, or to the one it is pinned to. Events of all backends come out of one queue, in each
backend's own order; every job still gets exactly one terminal event.
"""

from __future__ import annotations

import dataclasses
import queue
import threading

from desktop_app.backend.protocol import Backend, next_from
from desktop_app.core.events import TERMINAL, Event, Failed, ModelsChanged
from desktop_app.core.models import ModelCatalog, ModelInfo, ModelLoadError
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import Recipe

LOCAL = "local"


class BackendRouter:
    def __init__(self, backends: dict[str, Backend]):
        """``backends`` by a short key ("local", a server's name); the first one wins a model id they share."""
        if not backends:
            raise ValueError("a router needs at least one backend")
        self.backends = dict(backends)
        self.name = " + ".join(b.name for b in self.backends.values())
        self._events: queue.Queue[Event] = queue.Queue()
        self._jobs: dict[str, str] = {}  # job id → backend key
        self._lock = threading.Lock()
        self._catalogs = {key: backend.models() for key, backend in self.backends.items()}
        self._relays: list[threading.Thread] = []
        self._closing = threading.Event()

    # ---- models -----------------------------------------------------------------------------------
    def _located(self, key: str, info: ModelInfo) -> ModelInfo:
        if key == LOCAL or info.location:
            return info
        return dataclasses.replace(info, location=self.backends[key].name)

    def models(self) -> ModelCatalog:
        merged, seen = ModelCatalog(), set()
        for key, catalog in self._catalogs.items():
            for info in catalog.models:
                if info.id not in seen:
                    seen.add(info.id)
                    merged.models.append(self._located(key, info))
            merged.errors.extend(catalog.errors)
        return merged

    def owner(self, model_id: str) -> str | None:
        """The key of the backend that offers ``model_id`` (None: none does)."""
        for key, catalog in self._catalogs.items():
            if catalog.find(model_id) is not None:
                return key
        return None

    def refresh_models(self) -> None:
        for backend in self.backends.values():
            backend.refresh_models()
        self._catalogs = {key: backend.models() for key, backend in self.backends.items()}

    def describe(self, model_id: str) -> ModelInfo:
        key = self.owner(model_id)
        if key is not None:
            return self._located(key, self.backends[key].describe(model_id))
        errors = []
        for key, backend in self.backends.items():  # a path, or a model listed as broken
            try:
                return self._located(key, backend.describe(model_id))
            except ModelLoadError as exc:
                errors.append(exc)
        raise errors[0]

    # ---- jobs --------------------------------------------------------------------------------------
    def submit(self, recipe: Recipe, options: RunOptions, *, on: str | None = None) -> str:
        """Queue a job on the backend of its model, or on ``on`` (a backend key) when it is pinned."""
        key = on or self.owner(recipe.model.id) or next(iter(self.backends))
        if key not in self.backends:
            raise ValueError(f"no backend called {key!r}; there are: {', '.join(self.backends)}")
        with self._lock:
            job_id = self.backends[key].submit(recipe, options)
            self._jobs[job_id] = key
        return job_id

    def cancel(self, job_id: str) -> None:
        with self._lock:
            key = self._jobs.get(job_id)
        if key is not None:
            self.backends[key].cancel(job_id)

    def preload(self, model_id: str, options: RunOptions) -> None:
        key = self.owner(model_id)
        if key is not None:
            self.backends[key].preload(model_id, options)

    def request_curves(self, scheduler: str, model_id: str, steps: int) -> None:
        self.backends[self.owner(model_id) or next(iter(self.backends))].request_curves(scheduler, model_id, steps)

    # ---- events ------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._relays or self._closing.is_set():
            return
        for key, backend in self.backends.items():
            backend.start()
            relay = threading.Thread(target=self._relay, args=(key, backend), name=f"router-{key}")
            relay.start()
            self._relays.append(relay)

    def _relay(self, key: str, backend: Backend) -> None:
        while not self._closing.is_set():
            event = backend.next_event(0.05)
            if event is not None:
                self._pass(key, event)

    def _pass(self, key: str, event: Event) -> None:
        if isinstance(event, ModelsChanged):
            self._catalogs[key] = event.catalog
            event = ModelsChanged(self.models())
        elif isinstance(event, TERMINAL):
            with self._lock:
                self._jobs.pop(event.job_id, None)
        self._events.put(event)

    def next_event(self, timeout: float | None = None) -> Event | None:
        return next_from(self._events, timeout)

    def close(self) -> None:
        self._closing.set()
        for relay in self._relays:
            relay.join()
        for key, backend in self.backends.items():
            backend.close()
            while (event := backend.next_event(0)) is not None:  # the terminal events of what was queued
                self._pass(key, event)
        with self._lock:
            unanswered = list(self._jobs)
        for job_id in unanswered:  # a backend that broke its promise: the job still ends
            self._pass(self._jobs.get(job_id, LOCAL), Failed(job_id, "The backend stopped without finishing this job.", "server"))
