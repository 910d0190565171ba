"""The engine: models, devices and generation behind one small interface, on one thread.

``Engine.generate(recipe, options, cancel)`` is a generator of ``StepUpdate``s whose return value
is the ``GenerationResult``; ``Engine.run`` drains it for callers that only want the result. The
engine is not thread-safe: one thread owns it (the local backend's worker, or a test).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path

from desktop_app.backend.local import device as devices
from desktop_app.backend.local.cache import MemoryBudget, ModelCache
from desktop_app.backend.local.discovery import discover, resolve_model
from desktop_app.backend.local.generate import GenerationResult, InvalidRequest, pick_seed, run_generation
from desktop_app.backend.local.hashing import ModelHasher
from desktop_app.backend.local.loader import LoadedModel, place
from desktop_app.backend.local.loop import StepUpdate
from desktop_app.backend.local.performance import (
    CompileSettings,
    describe_error,
    free_device_memory,
    out_of_memory,
)
from desktop_app.core.models import ModelCatalog, ModelInfo
from desktop_app.core.options import DEFAULT_OPTIONS, RunOptions
from desktop_app.core.recipe import Problem, Recipe

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, model_paths: list[Path | str] = (), *, compile: CompileSettings | None = None,
                 budget: MemoryBudget | None = None, on_hash: Callable[[ModelInfo, str], None] | None = None):
        self.model_paths = list(model_paths)
        self.compile = compile or CompileSettings()
        self.cache = ModelCache(budget if budget is not None else MemoryBudget.detect())
        self.hasher = ModelHasher(on_hash)
        self._adopted: dict[str, ModelInfo] = {}
        self.last_load_seconds = 0.0

    def discover(self) -> ModelCatalog:
        return discover(self.model_paths)

    def model_info(self, id_or_path: str) -> ModelInfo:
        if id_or_path in self._adopted:
            return self._adopted[id_or_path]
        return resolve_model(id_or_path, self.model_paths)

    def adopt(self, info: ModelInfo, pipe, options: RunOptions = DEFAULT_OPTIONS) -> LoadedModel:
        """Use an already built pipeline (e.g. random weights for a benchmark) as model ``info.id``."""
        placement = devices.choose(options.device, options.precision)
        self._adopted[info.id] = info
        loaded = place(LoadedModel(info, pipe, None, placement), low_vram=options.low_vram)
        self.cache.put(ModelCache.key(info, placement, low_vram=options.low_vram), loaded)
        return loaded

    def load(self, id_or_path: str, options: RunOptions = DEFAULT_OPTIONS, *, info: ModelInfo | None = None) -> LoadedModel:
        """The model loaded where ``options`` ask (raises DeviceError, ModelLoadError); ``info``: its
        description when the caller has it already (finding it again scans the model folders)."""
        started = time.perf_counter()
        info = info if info is not None else self.model_info(id_or_path)
        placement = devices.choose(options.device, options.precision)
        loaded = self.cache.get(info, placement, low_vram=options.low_vram)
        loaded.apply_fast(options.fast, self.compile)
        self.hasher.request(loaded.info)
        self.last_load_seconds = time.perf_counter() - started
        return loaded

    def resolve(self, recipe: Recipe, info: ModelInfo) -> Recipe:
        """Check ``recipe`` against ``info`` and fill in the seed and size; raises InvalidRequest
        (ModelLoadError when a hires pass names a model that cannot be found)."""
        problems = recipe.validate(info)
        hires = recipe.hires
        if not problems and hires is not None and hires.model_id and hires.model_id != recipe.model.id:
            second = self.model_info(hires.model_id)
            if second.kind == "inpaint":
                problems.append(Problem("hires.model_id", f"{second.name} is an inpainting model; the second pass "
                                                          "needs a text-to-image model or an SDXL refiner"))
        if problems:
            raise InvalidRequest(problems)
        width, height = recipe.output.size_for(info)
        seed = recipe.output.seed if recipe.output.seed is not None else pick_seed(recipe.output.batch_size)
        return recipe.with_(seed=seed, width=width, height=height)

    def generate(
        self, recipe: Recipe, options: RunOptions = DEFAULT_OPTIONS, cancel: threading.Event | None = None, *,
        max_fps: float | None = None,
    ) -> Generator[StepUpdate, None, GenerationResult]:
        problems = options.problems()
        if problems:
            raise InvalidRequest(problems)
        info = self.model_info(recipe.model.id)
        recipe = self.resolve(recipe, info)
        loaded = self.load(recipe.model.id, options, info=info)
        second = self._second_model(recipe, options)
        oom = ""
        try:
            result = yield from run_generation(loaded, recipe, options, cancel, max_fps=max_fps, second=second)
        except Exception as exc:
            if not out_of_memory(exc) or loaded.low_vram or loaded.placement.device.type == "cpu":
                raise
            oom = describe_error(exc)
        if oom:  # outside the except block, so the failed run's tensors can be freed
            log.warning("out of memory on %s (%s); retrying once in low-VRAM mode", loaded.placement.device, oom)
            free_device_memory()
            changes = loaded.enable_low_vram()
            free_device_memory()
            result = yield from run_generation(loaded, recipe, options, cancel, max_fps=max_fps, second=second)
            result.notes.insert(0, "the GPU ran out of memory, so the image was made again from the start in low-VRAM "
                                   "mode (" + "; ".join(changes) + "). It stays on for this model until the model is "
                                   "loaded again; a smaller size or batch avoids it.")
        result.timings["load"] = self.last_load_seconds
        return result

    def _second_model(self, recipe: Recipe, options: RunOptions) -> LoadedModel | None:
        """The hires pass's own model, loaded beside the first (the cache keeps both)."""
        hires = recipe.hires
        if hires is None or not hires.model_id or hires.model_id == recipe.model.id:
            return None
        return self.load(hires.model_id, options)

    def run(self, recipe: Recipe, options: RunOptions = DEFAULT_OPTIONS, cancel: threading.Event | None = None,
            on_step=None) -> GenerationResult:
        steps = self.generate(recipe, options, cancel)
        while True:
            try:
                update = next(steps)
            except StopIteration as stop:
                return stop.value
            if on_step is not None:
                on_step(update)

    def close(self) -> None:
        self.cache.clear()
        self.hasher.close()

    unload = close
