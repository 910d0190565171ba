"""Loaded models kept for the next job, as many as fit in a memory budget.

An entry is keyed by the model file or folder and where it runs (device, precision, low-VRAM
offload), so an SDXL refiner beside its base, or the same model on the CPU and a GPU, are separate
entries and do not evict each other by design. Add-ons are not part of the key: LoRAs, a VAE file
and embeddings are switched in place on the loaded pipeline before each job (``add_ons``), because
a LoRA is megabytes and switches in milliseconds while a second copy of its checkpoint would cost
gigabytes of the budget and seconds to load; switching LoRAs never reloads the checkpoint. (Fused
LoRA weights, a speed-up for long runs of one LoRA, would make them part of the key again.)

A new model evicts the least recently used entries of the same memory (GPU memory for a model on
a GPU, RAM otherwise) only when it would not fit beside them.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from desktop_app.backend.local.device import Placement
from desktop_app.backend.local.loader import LoadedModel, load_model
from desktop_app.backend.local.performance import free_device_memory
from desktop_app.core.models import ModelInfo

log = logging.getLogger(__name__)

_NETWORKS = ("unet", "vae", "text_encoder", "text_encoder_2")
_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class CacheKey:
    path: str
    add_ons: tuple = ()
    device: str = "cpu"
    dtype: str = "fp32"
    low_vram: bool = False

    @property
    def pool(self) -> str:
        """Which memory the weights occupy: the GPU's own, or RAM (CPU, Apple's unified memory, offloaded)."""
        return "vram" if self.device.startswith("cuda") and not self.low_vram else "ram"


def _physical_ram() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # Windows has no sysconf
        if sys.platform == "win32":
            import ctypes

            class Status(ctypes.Structure):
                _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total", ctypes.c_ulonglong),
                            ("avail", ctypes.c_ulonglong), ("pt", ctypes.c_ulonglong), ("apt", ctypes.c_ulonglong),
                            ("vt", ctypes.c_ulonglong), ("av", ctypes.c_ulonglong), ("ave", ctypes.c_ulonglong)]

            status = Status(length=ctypes.sizeof(Status))
            if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
                return int(status.total)
        return 16 * 2**30


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes of model weights the cache may keep in RAM and in GPU memory."""

    ram: int
    vram: int

    @classmethod
    def detect(cls) -> MemoryBudget:
        """Half the machine's RAM (the rest is for activations, the app and everything else) and
        70% of the first GPU's memory (the rest is for the images being made)."""
        vram = 0
        try:
            import torch

            if torch.cuda.is_available():
                vram = int(torch.cuda.get_device_properties(0).total_memory * 0.7)
        except Exception:  # a broken CUDA install: the budget is RAM only
            log.info("no GPU memory figure; the model cache budgets RAM only", exc_info=True)
        return cls(ram=_physical_ram() // 2, vram=vram)

    def limit(self, pool: str) -> int:
        return self.vram if pool == "vram" else self.ram


def _safetensors_bytes(file: Path, element_size: int, wanted=lambda key: True) -> int:
    try:
        with file.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        total = 0
        for key, entry in header.items():
            if key != "__metadata__" and wanted(key):
                count = 1
                for side in entry["shape"]:
                    count *= side
                total += count * (element_size if entry["dtype"].startswith(("F", "BF")) else _BYTES.get(entry["dtype"], 4))
        return total
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return file.stat().st_size if file.exists() else 0


def estimate_bytes(info: ModelInfo, element_size: int) -> int:
    """What a model will take once loaded at ``element_size`` bytes per value, from its files'
    safetensors headers (shapes only, nothing loaded); a pickled file counts at its size. A single
    file's EMA copy and training leftovers are not loaded, so they do not count."""
    path = Path(info.path)
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            return path.stat().st_size
        return _safetensors_bytes(path, element_size, lambda key: not key.startswith(("model_ema.", "alphas", "betas")))
    total = 0
    for name in _NETWORKS:
        folder = path / name
        for file in sorted(folder.glob("*.safetensors")) if folder.is_dir() else ():
            total += _safetensors_bytes(file, element_size)
        for file in sorted(folder.glob("*.bin")) if folder.is_dir() else ():
            total += file.stat().st_size
    return total


class ModelCache:
    def __init__(self, budget: MemoryBudget | None = None, loader: Callable[..., LoadedModel] = load_model) -> None:
        self.budget = budget
        self._loader = loader
        self._entries: OrderedDict[CacheKey, LoadedModel] = OrderedDict()
        self._sizes: dict[CacheKey, int] = {}

    @staticmethod
    def key(info: ModelInfo, placement: Placement, *, low_vram: bool = False, add_ons: tuple = ()) -> CacheKey:
        return CacheKey(str(info.path), tuple(add_ons), str(placement.device), placement.precision, low_vram)

    def get(self, info: ModelInfo, placement: Placement, *, low_vram: bool = False, add_ons: tuple = (),
            vae_file: Path | None = None) -> LoadedModel:
        """The loaded model (loaded now if it is not kept). ``vae_file``: for a checkpoint file without
        a VAE, the one it is loaded with (it then counts as its own)."""
        key = self.key(info, placement, low_vram=low_vram, add_ons=add_ons)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        element = 2 if placement.precision in ("fp16", "bf16") else 4
        self._make_room(key.pool, estimate_bytes(info, element), keep=None)
        extra = {"vae_file": vae_file} if vae_file is not None else {}
        loaded = self._loader(info, placement, low_vram=low_vram, **extra)
        self.put(key, loaded)
        return loaded

    def put(self, key: CacheKey, loaded: LoadedModel) -> None:
        if key in self._entries:
            self.evict(key)
        self._entries[key] = loaded
        self._sizes[key] = loaded.weight_bytes()
        self._make_room(key.pool, 0, keep=key)  # the estimate may have been low

    def _make_room(self, pool: str, wanted: int, keep: CacheKey | None) -> None:
        if self.budget is None:
            return
        limit = self.budget.limit(pool)
        for key in [k for k in self._entries if k.pool == pool and k != keep]:
            used = sum(size for k, size in self._sizes.items() if k.pool == pool)
            if used + wanted <= limit:
                return
            log.info("model cache: unloading %s to make room (%d MB used of %d MB)", key.path, used >> 20, limit >> 20)
            self.evict(key)

    def evict(self, key: CacheKey) -> None:
        loaded = self._entries.pop(key, None)
        self._sizes.pop(key, None)
        if loaded is not None:
            loaded.disable_fast()
            free_device_memory()

    def keys(self) -> list[CacheKey]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        for key in list(self._entries):
            self.evict(key)
