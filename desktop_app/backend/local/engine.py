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
from desktop_app.backend.local.catalog import file_model
from desktop_app.backend.local.checkpoint_facts import PICKLE_SUFFIXES, no_vae_error
from desktop_app.backend.local.discovery import discover, resolve_model
from desktop_app.backend.local.generate import GenerationResult, InvalidRequest, pick_seed, run_generation
from desktop_app.backend.local.hashing import ModelHasher
from desktop_app.backend.local.job_add_ons import (
    AddOnError,
    JobAddOns,
    add_on_hashes,
    file_resolver,
    resolve_job_add_ons,
)
from desktop_app.backend.local.loader import LoadedModel, place
from desktop_app.backend.local.loop import StepUpdate
from desktop_app.backend.local.model_files import needs_vae
from desktop_app.backend.local.performance import (
    CompileSettings,
    describe_error,
    free_device_memory,
    out_of_memory,
)
from desktop_app.core.models import ModelCatalog, ModelInfo, ModelLoadError
from desktop_app.core.options import DEFAULT_OPTIONS, RunOptions
from desktop_app.core.recipe import Problem, Recipe

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, model_paths: list[Path | str] = (), *, compile: CompileSettings | None = None,
                 budget: MemoryBudget | None = None, on_hash: Callable[[ModelInfo, str], None] | None = None,
                 on_hash_progress: Callable[[ModelInfo, int, int], None] | None = None,
                 app_roots: list[Path | str] = ()):
        self.model_paths = list(model_paths)
        self.app_roots = list(app_roots)
        self.compile = compile or CompileSettings()
        self.cache = ModelCache(budget if budget is not None else MemoryBudget.detect())
        self.hasher = ModelHasher(on_hash, on_hash_progress)
        self._adopted: dict[str, ModelInfo] = {}
        self._catalog: ModelCatalog | None = None
        self.last_load_seconds = 0.0

    def discover(self) -> ModelCatalog:
        self._catalog = discover(self.model_paths, self.app_roots)
        return self._catalog

    def catalog(self) -> ModelCatalog:
        """The models and add-ons as last listed (listed now the first time)."""
        return self._catalog if self._catalog is not None else self.discover()

    def set_folders(self, model_paths: list[Path | str], app_roots: list[Path | str] | None = None) -> None:
        self.model_paths = list(model_paths)
        if app_roots is not None:
            self.app_roots = list(app_roots)
        self._catalog = None

    def model_info(self, id_or_path: str) -> ModelInfo:
        """A model by id (listed again once when it is not known) or by path, its files read again:
        a folder may have changed, a pickle is read (converted safely) before its first job, and an
        SD 2.x file takes the user's ε/v answer."""
        if id_or_path in self._adopted:
            return self._adopted[id_or_path]
        info = self.catalog().find(id_or_path)
        if info is None and Path(id_or_path).expanduser().exists():  # a folder or file by its path
            return resolve_model(id_or_path, self.model_paths, self.app_roots)
        info = info or self.discover().find(id_or_path)  # a model added since the last listing
        if info is None:
            return resolve_model(id_or_path, self.model_paths, self.app_roots)
        path = Path(info.path)
        if path.is_file():
            if path.suffix.lower() in PICKLE_SUFFIXES:
                from desktop_app.backend.local import pickles

                pickles.safetensors_copy(path)
            return file_model(path, info.id, info.source)
        return info

    def adopt(self, info: ModelInfo, pipe, options: RunOptions = DEFAULT_OPTIONS) -> LoadedModel:
        """Use an already built pipeline (e.g. random weights for a benchmark) as model ``info.id``."""
        placement = devices.choose(options.device, options.precision)
        self._adopted[info.id] = info
        loaded = place(LoadedModel(info, pipe, None, placement), low_vram=options.low_vram)
        self.cache.put(ModelCache.key(info, placement, low_vram=options.low_vram), loaded)
        return loaded

    def load(self, id_or_path: str, options: RunOptions = DEFAULT_OPTIONS, *, vae_file: Path | None = None,
             info: ModelInfo | None = None) -> LoadedModel:
        """The model loaded where ``options`` ask (raises DeviceError, ModelLoadError). ``vae_file``:
        the VAE of a checkpoint file that has none inside; ``info``: the model's description when the
        caller has it already (finding it again scans the model folders)."""
        started = time.perf_counter()
        info = info if info is not None else self.model_info(id_or_path)
        placement = devices.choose(options.device, options.precision)
        if vae_file is None and needs_vae(info):
            raise no_vae_error(Path(info.path))
        loaded = self.cache.get(info, placement, low_vram=options.low_vram, vae_file=vae_file)
        loaded.apply_fast(options.fast, self.compile)
        self.hasher.request(loaded.info)
        self.last_load_seconds = time.perf_counter() - started
        return loaded

    def load_for(self, recipe: Recipe, options: RunOptions = DEFAULT_OPTIONS, *,
                 info: ModelInfo | None = None) -> LoadedModel:
        """The recipe's model loaded (with its VAE file when the checkpoint has none inside)."""
        resolve = file_resolver(self.catalog())
        try:
            vae = next((resolve("vae", a.name) for a in recipe.model.add_ons if a.kind == "vae"), None)
        except ModelLoadError as exc:
            raise AddOnError.of(exc) from None
        return self.load(recipe.model.id, options, vae_file=vae, info=info)

    def resolve(self, recipe: Recipe, info: ModelInfo) -> Recipe:
        """Check ``recipe`` against ``info`` and fill in the seed and size; raises InvalidRequest."""
        return self.resolve_job(recipe, info).recipe

    def resolve_job(self, recipe: Recipe, info: ModelInfo) -> JobAddOns:
        """The recipe resolved (seed, size, the prompt's LoRA tags and the embeddings it uses among its
        add-ons, each found and checked against the model's family), with warnings about it. Raises
        InvalidRequest for the recipe's problems, ModelLoadError naming an add-on file at fault or a
        hires pass's model that cannot be found."""
        problems = recipe.validate(info)
        hires = recipe.hires
        if not problems and hires is not None and hires.model_id and hires.model_id != recipe.model.id:
            second = self.model_info(hires.model_id)
            if second.kind == "inpaint":
                problems.append(Problem("hires.model_id", f"{second.name} is an inpainting model; the second pass "
                                                          "needs a text-to-image model or an SDXL refiner"))
        if problems:
            raise InvalidRequest(problems)
        try:
            job = resolve_job_add_ons(recipe, info, self.catalog())
        except ModelLoadError as exc:
            raise AddOnError.of(exc) from None
        if job.problems:
            raise InvalidRequest([Problem("prompt.text", p) for p in job.problems])
        width, height = recipe.output.size_for(info)
        seed = recipe.output.seed if recipe.output.seed is not None else pick_seed(recipe.output.batch_size)
        job.recipe = job.recipe.with_(seed=seed, width=width, height=height)
        return job

    def generate(
        self, recipe: Recipe, options: RunOptions = DEFAULT_OPTIONS, cancel: threading.Event | None = None, *,
        max_fps: float | None = None,
    ) -> Generator[StepUpdate, None, GenerationResult]:
        problems = options.problems()
        if problems:
            raise InvalidRequest(problems)
        info = self.model_info(recipe.model.id)
        job = self.resolve_job(recipe, info)
        recipe = job.recipe
        resolve = file_resolver(self.catalog())
        loaded = self.load_for(recipe, options, info=info)
        try:
            notes = loaded.apply_add_ons(recipe.model.add_ons, resolve)
        except ModelLoadError as exc:
            raise AddOnError.of(exc) from None
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
        result.warnings[:0] = job.warnings
        result.notes.extend(notes)
        if recipe.model.add_ons:
            result.lora_hashes, result.ti_hashes = add_on_hashes(recipe, resolve, self.hasher.cache)
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
