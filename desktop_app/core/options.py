"""How a job runs, as opposed to what it makes: device, precision, previews, speed and memory.

``RunOptions`` travel with every job to a backend and are never written into an image's recipe:
the same recipe makes the same picture on the CPU, a GPU or a server, with or without previews.
"""

from __future__ import annotations

from dataclasses import dataclass

from desktop_app.core.recipe import Problem, is_number, is_whole

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
PREVIEW_MODES = ("latent", "vae", "off")
VAE_TILING = ("auto", "on", "off")
MAX_PREVIEW_FPS = 120.0


@dataclass(frozen=True)
class RunOptions:
    device: str = "auto"
    precision: str = "auto"
    preview: str = "latent"  # "latent" (cheap linear map of x̂₀), "vae" (full decode), "off"
    preview_every: int = 1  # with preview="vae": decode every N steps
    preview_max_fps: float = 15.0  # the most previews a second (wall clock); 0: one every step
    fast: bool = False  # compiled UNet (fused QKV, channels_last) where the backend offers it
    low_vram: bool = False  # model CPU offload (CUDA), the UNet batch in halves, a tiled decode
    vae_tiling: str = "auto"  # auto: tiles for images over twice the model's native area

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        for name, value, choices in (("device", self.device, DEVICES), ("precision", self.precision, PRECISIONS),
                                     ("preview", self.preview, PREVIEW_MODES), ("vae_tiling", self.vae_tiling, VAE_TILING)):
            if value not in choices:
                found.append(Problem(f"options.{name}", f"{name.replace('_', ' ')} must be one of {', '.join(choices)}, not {value!r}"))
        if not is_whole(self.preview_every) or self.preview_every < 1:
            found.append(Problem("options.preview_every", f"the preview interval must be at least 1 step, not {self.preview_every}"))
        if not is_number(self.preview_max_fps) or not 0 <= self.preview_max_fps <= MAX_PREVIEW_FPS:
            found.append(Problem("options.preview_max_fps",
                                 f"the preview rate must be from 0 (every step) to {MAX_PREVIEW_FPS:g} a second, "
                                 f"not {self.preview_max_fps}"))
        return found


DEFAULT_OPTIONS = RunOptions()
