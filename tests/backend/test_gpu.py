"""The CUDA path, on a real GPU: fp16 and bf16, cancel, CPU/GPU seed agreement, a real
out-of-memory error and its retry, fast mode and its fallback. Skipped where there is no CUDA
(the conftest marks them); run with ``pytest -m gpu`` on a machine with a GPU."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from desktop_app.backend.local.engine import Engine
from desktop_app.backend.local.performance import CompileSettings
from desktop_app.core.recipe import Recipe
from tests.backend.helpers import options

pytestmark = pytest.mark.gpu
CUDA16 = options(device="cuda", precision="fp16", preview="latent")


def request(model: str, **changes) -> Recipe:
    base = Recipe.of("a red circle on the left", model_id=model, scheduler="DDIM", steps=20, guidance_scale=5.0, seed=1234)
    return base.with_(**changes)


def pixels(result) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.int16) for image in result.images])


@pytest.fixture(scope="module")
def cpu_shapes() -> np.ndarray:
    return pixels(Engine().run(request("shapes", batch_size=2), options(preview="latent")))


@pytest.mark.xfail(strict=True, reason="known CPU/GPU disagreement, measured on an H100 (2026-11-26): whole pictures "
                                       "differ, mean pixel difference 96 in fp16 and 190 in bf16, while bf16 on the CPU "
                                       "agrees with fp32 to 0.3; test_each_part_gives_the_same_output_on_cpu_and_gpu "
                                       "localises it on the next GPU run")
@pytest.mark.parametrize(("precision", "mean_tolerance"), [("fp16", 3.0), ("bf16", 6.0)])
def test_the_gpu_draws_what_the_cpu_draws_for_a_seed(cpu_shapes, precision, mean_tolerance):
    """Noise is drawn on the CPU, so a seed is the same picture everywhere, within the precision's rounding."""
    engine = Engine()
    result = engine.run(request("shapes", batch_size=2), options(device="cuda", precision=precision, preview="latent"))
    assert result.device.startswith("cuda") and result.precision == precision
    gpu = pixels(result)
    assert gpu.shape == cpu_shapes.shape and gpu.std() > 5  # a picture, not a black or flat image
    difference = np.abs(gpu - cpu_shapes)
    assert difference.mean() < mean_tolerance, f"mean difference {difference.mean():.2f} (max {difference.max()})"


def part_outputs(engine: Engine, run_options, prompt: str = "a red circle on the left") -> dict[str, np.ndarray]:
    """Each part of the Shapes model on the same inputs, as float32 numpy on the CPU: the text
    encoder, one UNet call (t = 500) and the VAE decoder. Fixed inputs drawn on the CPU."""
    import torch

    pipe = engine.load("shapes", run_options).pipe
    device, dtype = pipe.unet.device, pipe.unet.dtype
    inputs = torch.Generator().manual_seed(7)
    latents = torch.randn((1, 4, 16, 16), generator=inputs)
    with torch.no_grad():
        ids = pipe.tokenizer([prompt], padding="max_length", max_length=pipe.tokenizer.model_max_length,
                             return_tensors="pt").input_ids.to(device)
        embeds = pipe.text_encoder(ids)[0]
        reference = torch.randn(embeds.shape, generator=inputs).to(device, dtype)  # the same conditioning for both
        out = pipe.unet(latents.to(device, dtype), torch.tensor(500, device=device), encoder_hidden_states=reference)[0]
        image = pipe.vae.decode(latents.to(device, dtype) / pipe.vae.config.scaling_factor)[0]
    return {name: value.float().cpu().numpy() for name, value in
            (("text encoder", embeds), ("UNet", out), ("VAE decoder", image))}


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_each_part_gives_the_same_output_on_cpu_and_gpu(precision):
    """Localises a CPU/GPU disagreement in whole pictures: relative RMS error of each part."""
    cpu, gpu = part_outputs(Engine(), options()), part_outputs(Engine(), options(device="cuda", precision=precision))
    errors = {name: float(np.sqrt(((gpu[name] - cpu[name]) ** 2).mean() / (cpu[name] ** 2).mean())) for name in cpu}
    limit = 0.02 if precision == "fp16" else 0.05
    assert all(error < limit for error in errors.values()), errors


def test_cancel_on_the_gpu_stops_within_a_step_and_frees_the_job():
    import torch

    engine = Engine()
    cancel = threading.Event()
    seen = []

    def on_step(update):
        seen.append(update.step)
        if update.step == 3:
            cancel.set()

    result = engine.run(request("shapes", steps=900), CUDA16, cancel, on_step=on_step)
    assert result.cancelled and result.images == [] and max(seen) <= 4
    torch.cuda.synchronize()
    assert engine.run(request("shapes", steps=4), CUDA16).images  # the engine still works


def _extra_memory(engine: Engine, req: Recipe, run_options) -> tuple[int, int]:
    """(memory reserved before the run, the most the run reserved on top of it). Earlier tests may
    leave models and cached blocks on the GPU; only what this generation needs is compared."""
    import gc

    import torch

    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_reserved()
    torch.cuda.reset_peak_memory_stats()
    engine.run(req, run_options)
    torch.cuda.synchronize()
    return before, torch.cuda.max_memory_reserved() - before


def test_a_real_out_of_memory_error_is_retried_once_in_low_vram_mode(tiny_model):
    """Cap this process's GPU memory between what low-VRAM mode needs and what the normal path
    needs, so the normal path really runs out; the engine must retry in low-VRAM mode and say so.
    Batch 8 at 512×512: the VAE decode of eight pictures at once is what the sliced, tiled decode
    of low-VRAM mode avoids (on an H100, batch 8 at 256×256 needed 528 MB in all either way)."""
    import torch

    big = request(str(tiny_model), width=512, height=512, batch_size=8, steps=2)
    quiet = options(device="cuda", precision="fp16")
    _, normal_extra = _extra_memory(Engine(), big, quiet)
    _, low_extra = _extra_memory(Engine(), big, options(device="cuda", precision="fp16", low_vram=True))
    assert low_extra < 0.8 * normal_extra, (low_extra, normal_extra)  # what makes the retry worth doing
    total = torch.cuda.get_device_properties(0).total_memory
    import gc

    gc.collect()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_reserved()
    torch.cuda.set_per_process_memory_fraction((before + (low_extra + normal_extra) / 2) / total)
    try:
        engine = Engine()
        result = engine.run(big, quiet)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert len(result.images) == 8
    assert "ran out of memory" in result.notes[0] and "low-VRAM" in result.notes[0]
    assert engine.load(str(tiny_model), quiet).low_vram


def test_fast_mode_falls_back_when_compiling_fails(tiny_model):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("the compiler is missing")

    req = request(str(tiny_model), steps=4)
    normal = pixels(Engine().run(req, CUDA16))
    fast = Engine(compile=CompileSettings(backend=broken_backend))
    result = fast.run(req, options(device="cuda", precision="fp16", preview="latent", fast=True))
    assert "fast mode is off" in result.notes[0] and "the compiler is missing" in result.notes[0]
    assert np.abs(pixels(result) - normal).max() <= 1


@pytest.mark.slow
def test_fast_mode_compiles_once_and_draws_the_same_picture(tiny_model):
    req = request(str(tiny_model), steps=8)
    normal = pixels(Engine().run(req, CUDA16))
    fast, fast_options = Engine(), options(device="cuda", precision="fp16", preview="latent", fast=True)
    phases = []
    first = fast.run(req, fast_options, on_step=lambda update: phases.append(update.phase))
    assert phases[0] == "warm-up" and first.notes == [] and first.timings["warm-up"] > 0
    second = fast.run(req.with_(seed=99), fast_options)
    assert "warm-up" not in second.timings
    assert np.abs(pixels(first) - normal).mean() < 2


def test_previews_make_the_step_loop_wait_for_the_gpu_no_more_often():
    """A preview at every step (DPM++ 2M has no x̂₀ of its own, so the engine forms it) must not
    add GPU synchronisations: count them with PyTorch's sync debug mode, previews on and off."""
    import warnings

    import torch

    engine = Engine()

    def synchronisations(preview: str) -> int:
        req = request("shapes", scheduler="DPM++ 2M", steps=20)
        steps = engine.generate(req, options(device="cuda", precision="fp16", preview=preview), max_fps=0)
        frames = 0
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                while True:
                    try:
                        frames += next(steps).preview is not None
                    except StopIteration:
                        break
        finally:
            torch.cuda.set_sync_debug_mode(0)
        assert (frames > 0) == (preview != "off")
        return sum("synchroniz" in str(w.message) for w in caught)

    synchronisations("latent")  # loads the model and warms up
    assert synchronisations("latent") <= synchronisations("off")
