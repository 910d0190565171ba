"""The engine: models, device and the generation loop behind one small interface.

``Engine.generate(request, cancel)`` is a generator of ``StepUpdate``s whose return value is the
``GenerationResult``; ``Engine.run`` drains it for callers that only want the result. The engine
is not thread-safe: one thread owns it (the GUI's engine thread, or the CLI's main thread).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator
from pathlib import Path

from desktop_app.engine import device as devices
from desktop_app.engine.generate import (
    GenerationResult,
    InvalidRequest,
    StepUpdate,
    pick_seed,
    run_generation,
)
from desktop_app.engine.loader import LoadedModel, ModelCache, place
from desktop_app.engine.models import Discovery, ModelInfo, discover, resolve_model
from desktop_app.engine.performance import (
    VAE_TILING,
    Performance,
    describe_error,
    free_device_memory,
    out_of_memory,
)
from desktop_app.engine.request import GenerationRequest

log = logging.getLogger(__name__)


class Engine:
    def __init__(
        self, device: str = "auto", precision: str = "auto", extra_model_paths: list[Path | str] = (),
        performance: Performance | None = None,
    ):
        performance = performance or Performance()
        if performance.vae_tiling not in VAE_TILING:
            raise ValueError(f"VAE tiling must be one of {', '.join(VAE_TILING)}, not {performance.vae_tiling!r}")
        self.placement = devices.choose(device, precision)
        self.performance = performance
        self.extra_model_paths = list(extra_model_paths)
        self._cache = ModelCache(performance)
        self._adopted: dict[str, ModelInfo] = {}
        self.last_load_seconds = 0.0

    def discover(self) -> Discovery:
        return discover(self.extra_model_paths)

    def model_info(self, id_or_path: str) -> ModelInfo:
        if id_or_path in self._adopted:
            return self._adopted[id_or_path]
        return resolve_model(id_or_path, self.extra_model_paths)

    def adopt(self, info: ModelInfo, pipe) -> None:
        """Use an already built pipeline (e.g. random weights for a benchmark) as model ``info.id``."""
        self._adopted[info.id] = info
        self._cache.put(place(LoadedModel(info, pipe, None, self.placement), self.performance))

    def load(self, id_or_path: str) -> LoadedModel:
        started = time.perf_counter()
        loaded = self._cache.get(self.model_info(id_or_path), self.placement)
        self.last_load_seconds = time.perf_counter() - started
        return loaded

    def resolve(self, request: GenerationRequest, info: ModelInfo) -> GenerationRequest:
        """Check ``request`` against ``info`` and fill in the seed and size; raises InvalidRequest."""
        problems = request.validate(info)
        if problems:
            raise InvalidRequest(problems)
        width, height = request.size_for(info)
        seed = request.seed if request.seed is not None else pick_seed(request.batch_size)
        return request.replace(seed=seed, width=width, height=height)

    def generate(
        self, request: GenerationRequest, cancel: threading.Event | None = None, *, max_fps: float = 15.0
    ) -> Generator[StepUpdate, None, GenerationResult]:
        info = self.model_info(request.model_id)
        request = self.resolve(request, info)
        loaded = self.load(request.model_id)
        tiling = self.performance.vae_tiling
        oom = ""
        try:
            result = yield from run_generation(loaded, request, cancel, max_fps=max_fps, vae_tiling=tiling)
        except Exception as exc:
            if not out_of_memory(exc) or loaded.low_vram or loaded.placement.device.type == "cpu":
                raise
            oom = describe_error(exc)
        if oom:  # outside the except block, so the failed run's tensors can be freed
            log.warning("out of memory on %s (%s); retrying once in low-VRAM mode", loaded.placement.device, oom)
            free_device_memory()
            changes = loaded.enable_low_vram()
            free_device_memory()
            result = yield from run_generation(loaded, request, cancel, max_fps=max_fps, vae_tiling=tiling)
            result.notes.insert(0, "the GPU ran out of memory, so the image was made again from the start in low-VRAM "
                                   "mode (" + "; ".join(changes) + "). It stays on for this model until the model is "
                                   "loaded again; a smaller size or batch avoids it.")
        result.timings["load"] = self.last_load_seconds
        return result

    def run(self, request: GenerationRequest, cancel: threading.Event | None = None, on_step=None) -> GenerationResult:
        steps = self.generate(request, cancel)
        while True:
            try:
                update = next(steps)
            except StopIteration as stop:
                return stop.value
            if on_step is not None:
                on_step(update)

    def unload(self) -> None:
        self._cache.clear()
