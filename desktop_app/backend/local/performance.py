"""Speed and memory options: fast mode (a compiled UNet), VAE tiling, low-VRAM mode.

Fast mode fuses the attention projections (one matmul for q, k and v), stores the UNet's weights
channels-last and compiles it with ``torch.compile`` (inductor; on CUDA with CUDA graphs, mode
"reduce-overhead"). Shapes are static: each (batch, size, dtype) compiles once, and inductor's
cache lives in the app's cache folder, so a later launch reuses the generated kernels. Any
failure while compiling or running the compiled UNet puts the model back on the normal path and
says why; nothing is lost but speed.

Low-VRAM mode moves each component to the GPU only while it runs (diffusers' model CPU offload)
and decodes the image in tiles and one at a time. The engine turns it on by itself, once, when a
CUDA generation runs out of memory.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

import desktop_app
from desktop_app.core import paths

log = logging.getLogger(__name__)

# auto: tile the decode when the image has more than this many times the model's native pixels
AUTO_TILING_AREA = 2.0


@dataclass(frozen=True)
class CompileSettings:
    """How fast mode compiles, for the whole engine (the job's ``RunOptions.fast`` turns it on)."""

    backend: str | Any = "inductor"  # a torch.compile backend; tests pass one that fails
    devices: tuple[str, ...] = ("cuda",)  # where fast mode applies


def out_of_memory(exc: BaseException) -> bool:
    """Is ``exc`` a device running out of memory (CUDA, MPS)?"""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def describe_error(exc: BaseException, limit: int = 200) -> str:
    """The root cause of ``exc`` in one line, with its type: torch.compile wraps the real error in
    its own, and some errors have an empty or many-line message."""
    while (inner := getattr(exc, "inner_exception", None) or exc.__cause__) is not None:
        exc = inner
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def free_device_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        mps.empty_cache()


def use_app_compile_cache() -> None:
    """Keep inductor's and Triton's caches in the app's cache folder (unless the user set them)."""
    root = paths.cache_dir() / "compile"
    for name, folder in (("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("TRITON_CACHE_DIR", "triton")):
        if name not in desktop_app.USER_COMPILE_CACHE_VARS:
            os.environ[name] = str(root / folder)
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")


def wants_tiling(setting: str, low_vram: bool, size: tuple[int, int], native: tuple[int, int]) -> bool:
    if setting == "on" or low_vram:
        return True
    if setting == "off":
        return False
    return size[0] * size[1] > AUTO_TILING_AREA * native[0] * native[1]


class FastUNet:
    """The compiled UNet of one loaded pipeline, and the way back to the eager one."""

    def __init__(self, unet, device: torch.device, backend: str | Any = "inductor"):
        use_app_compile_cache()
        self.unet = unet
        self.cuda_graphs = device.type == "cuda" and backend == "inductor"
        self.fused = False
        try:
            unet.fuse_qkv_projections()
            self.fused = True
        except (ValueError, AttributeError) as exc:  # e.g. added KV projections: keep separate ones
            log.info("fast mode: QKV projections not fused (%s)", exc)
        unet.to(memory_format=torch.channels_last)
        mode = "reduce-overhead" if self.cuda_graphs else None
        self.compiled = torch.compile(unet, backend=backend, mode=mode, fullgraph=False, dynamic=False)
        self.warm: set[tuple] = set()  # input shapes already compiled in this process

    def needs_warm_up(self, shape: tuple) -> bool:
        return shape not in self.warm

    def __call__(self, sample: torch.Tensor, *args, **kwargs):
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        out = self.compiled(sample.contiguous(memory_format=torch.channels_last), *args, **kwargs)
        self.warm.add(tuple(sample.shape) + (sample.dtype,))
        if self.cuda_graphs:  # CUDA-graph outputs are overwritten by the next replay
            out = tuple(o.clone() for o in out)
        return out

    def undo(self) -> None:
        """Back to the eager UNet, as it was loaded."""
        if self.fused:
            self.unet.unfuse_qkv_projections()
        self.unet.to(memory_format=torch.contiguous_format)
        torch._dynamo.reset()


def enable_low_vram(pipe, device: torch.device) -> list[str]:
    """Turn on what saves memory on ``device``; returns what was turned on, in words."""
    done = []
    if device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
        done.append("each model part on the GPU only while it runs (model CPU offload)")
    pipe.vae.enable_tiling()
    pipe.vae.enable_slicing()
    done.append("the image decoded in tiles, one at a time")
    return done
