"""The hooks a job adds to the denoise loop: cancel, guidance, inpainting, previews.

Each is small and knows one thing; ``hooks_for`` picks them for a job, in the order they must run
(guidance combines the two predictions before the classifier shifts the result; the preview sees
the final step; the inpaint blend fixes the known region before the preview sees it).
"""

from __future__ import annotations

import math
import threading

import torch

from desktop_app.backend.local.loop import DenoiseContext, Hook, Step
from desktop_app.backend.local.previews import Previewer


class CancelHook(Hook):
    """Stops the loop at the next step once the job's event is set."""

    def __init__(self, cancel: threading.Event):
        self.cancel = cancel

    def pre_step(self, ctx: DenoiseContext, step: Step) -> None:
        if self.cancel.is_set():
            step.stop = True


class ClassifierFreeGuidance(Hook):
    """ε̄ = ε(x_t|∅) + s·(ε(x_t|c) − ε(x_t|∅)): the UNet sees [x_t; x_t] against [negative; prompt]."""

    def __init__(self, scale: float):
        self.scale = scale
        self._kwargs: dict | None = None

    def pre_loop(self, ctx: DenoiseContext) -> None:
        self._kwargs = ctx.conditioning.unet_kwargs(with_negative=True)  # stacked once, not every step

    def pre_unet(self, ctx: DenoiseContext, step: Step) -> None:
        step.model_input = torch.cat([step.x_t] * 2)
        step.unet_kwargs = self._kwargs

    def post_unet(self, ctx: DenoiseContext, step: Step) -> None:
        uncond, cond = step.noise_pred.chunk(2)
        step.noise_pred = uncond + self.scale * (cond - uncond)


class ClassifierGuidance(Hook):
    """ε̂ = ε − s·√(1−ᾱ_t)·∇ₓ log p_φ(c | x_t), with a classifier trained on noisy latents.

    A v-predicting model's output is v = (ε − √(1−ᾱ)·x_t)/√ᾱ for a fixed x_t, so the same shift
    of ε moves v by that shift divided by √ᾱ.
    """

    def __init__(self, classifier, target: dict[str, int], scale: float):
        self.classifier, self.target, self.scale = classifier, target, scale

    def post_unet(self, ctx: DenoiseContext, step: Step) -> None:
        step.noise_pred = self.shift(step.x_t, step.time, step.alpha_bar, step.noise_pred, ctx.prediction_type)

    def shift(self, x_t: torch.Tensor, t: float, alpha_bar: float, noise_pred: torch.Tensor, prediction_type: str):
        with torch.enable_grad():
            x = x_t.detach().float().requires_grad_(True)
            timestep = torch.full((x.shape[0],), t, device=x.device)
            log_p = self.classifier.log_prob(x, timestep, self.target).sum()
            (grad,) = torch.autograd.grad(log_p, x)
        shift = self.scale * math.sqrt(1 - alpha_bar) * grad
        if prediction_type == "v_prediction":
            shift = shift / math.sqrt(alpha_bar)
        return noise_pred - shift.to(noise_pred.dtype)


class InpaintConditioning(Hook):
    """A 9-channel inpainting UNet sees [x_t, mask, masked picture's latents] on the channel axis
    (after guidance has doubled x_t, so the mask and latents are repeated to match)."""

    def __init__(self, mask: torch.Tensor, masked_latents: torch.Tensor):
        self.mask, self.masked_latents = mask, masked_latents
        self._stacked: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def pre_unet(self, ctx: DenoiseContext, step: Step) -> None:
        copies = step.model_input.shape[0] // self.mask.shape[0]
        if copies not in self._stacked:
            self._stacked[copies] = (torch.cat([self.mask] * copies), torch.cat([self.masked_latents] * copies))
        mask, latents = self._stacked[copies]
        step.model_input = torch.cat([step.model_input, mask, latents], dim=1)


class InpaintBlend(Hook):
    """Any model inpaints: after each step the known region is put back, noised by the forward
    process to the next step's level (x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, with the job's own ε); after the
    last step, the clean latents themselves. Inside the mask the model's step stands."""

    def __init__(self, image_latents: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor):
        self.image_latents, self.noise, self.mask = image_latents, noise, mask

    def post_step(self, ctx: DenoiseContext, step: Step) -> None:
        known = self.image_latents
        if step.index < len(ctx.timesteps) - 1:
            known = ctx.scheduler.add_noise(known, self.noise, torch.tensor([ctx.timesteps[step.index + 1]]))
        step.next_latents = (1 - self.mask) * known + self.mask * step.next_latents


class PreviewHook(Hook):
    """Turns the step's x̂₀ into a frame when one is due (see ``previews.Previewer``)."""

    def __init__(self, previewer: Previewer):
        self.previewer = previewer

    def post_step(self, ctx: DenoiseContext, step: Step) -> None:
        previewer = self.previewer
        if not previewer.enabled:
            return
        want = previewer.due(step.index)
        frame = previewer.poll()  # an earlier frame whose copy from the GPU has finished
        if want and frame is None:
            frame = previewer.submit(step.x0(ctx.prediction_type))
        step.preview = frame
