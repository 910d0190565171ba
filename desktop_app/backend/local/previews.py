"""Cheap previews of the image while it forms.

The default preview applies a linear latent→RGB map (4×3 matrix plus bias) to the estimate of the
clean latent x̂₀. On CUDA the small RGB frame is copied to pinned memory with ``non_blocking=True``
and picked up once its CUDA event has completed, so the step loop never waits for the GPU.
Frames are throttled by wall clock on a fixed cadence of 1/max_fps (a frame that comes a little
late does not push the next one back), so steps just slower than the cadence still give nearly
max_fps frames, and never more.

A full VAE decode (``mode="vae"``) has a time budget as well: a frame is due only while the decodes
so far took at most ``VAE_BUDGET`` of the time since the first step (unless ``max_fps`` is 0, which
asks for every step), so previews never make a run much slower, whatever the model's decoder costs
against its UNet step. That holds on the CPU, where the decode runs in the step loop's own time; on
CUDA the call returns before the GPU is done, and the budget rarely holds a frame back.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

VAE_BUDGET = 0.10  # the most of a run's time full-decode previews may take


def _now() -> float:
    return time.perf_counter()


def tile(frames: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) → one (H', W', 3) grid, near square, so a batch previews together."""
    count, height, width, _ = frames.shape
    if count == 1:
        return frames[0]
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    grid = np.zeros((rows * height, cols * width, 3), dtype=frames.dtype)
    for k in range(count):
        r, c = divmod(k, cols)
        grid[r * height : (r + 1) * height, c * width : (c + 1) * width] = frames[k]
    return grid


def to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) values in [-1, 1] → uint8, on the same device."""
    return ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class Previewer:
    """Turns x̂₀ estimates into RGB frames, at most ``max_fps`` a second, without GPU syncs."""

    def __init__(self, mode: str, *, factors: dict | None, decode=None, every: int = 1, max_fps: float = 15.0,
                 budget: float = VAE_BUDGET, clock=None):
        self.mode = mode if (mode != "latent" or factors) else ("vae" if decode else "off")
        self.budget, self.clock = budget, clock if clock is not None else _now
        self._started: float | None = None  # the first step's time
        self.decode_seconds = 0.0  # spent in full decodes so far
        self.decode = decode  # callable: latents (B, C, h, w) → images (B, 3, H, W) in [-1, 1]
        self.every = max(1, every)
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self._next = -math.inf  # when the next frame is due
        self._pending: tuple[torch.cuda.Event, torch.Tensor] | None = None
        self._factors = factors
        self._matrix: torch.Tensor | None = None
        self._bias: torch.Tensor | None = None

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def due(self, step_index: int) -> bool:
        if not self.enabled:
            return False
        now = self.clock()
        if self._started is None:
            self._started = now
        if self.mode == "vae":
            if (step_index + 1) % self.every:
                return False
            if self.min_interval and self.decode_seconds > self.budget * (now - self._started):
                return False  # max_fps 0 asks for every step: no budget either
        return now >= self._next

    def _rgb(self, x0: torch.Tensor) -> torch.Tensor:
        if self.mode == "vae":
            images = self.decode(x0)
            return images.permute(0, 2, 3, 1)
        if self._matrix is None or self._matrix.device != x0.device:
            self._matrix = torch.tensor(self._factors["matrix"], device=x0.device, dtype=torch.float32)
            self._bias = torch.tensor(self._factors.get("bias", [0, 0, 0]), device=x0.device, dtype=torch.float32)
        return torch.einsum("bchw,cr->bhwr", x0.float(), self._matrix) + self._bias

    def submit(self, x0: torch.Tensor) -> np.ndarray | None:
        """Start a frame from x̂₀; returns a finished frame at once on the CPU, else None."""
        now = self.clock()
        if now - self._next > self.min_interval:  # the first frame, or a long pause: start the cadence again
            self._next = now + self.min_interval
        else:
            self._next += self.min_interval
        with torch.no_grad():
            frame = to_uint8(self._rgb(x0.detach()))
        if self.mode == "vae":
            self.decode_seconds += self.clock() - now
        if frame.device.type != "cuda":
            return tile(frame.cpu().numpy())
        pinned = torch.empty(frame.shape, dtype=torch.uint8, pin_memory=True)
        pinned.copy_(frame, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending = (event, pinned)
        return None

    def poll(self) -> np.ndarray | None:
        """A frame whose asynchronous copy has finished, if any (never blocks)."""
        if self._pending is None or not self._pending[0].query():
            return None
        frame = self._pending[1].numpy()
        self._pending = None
        return tile(frame)
