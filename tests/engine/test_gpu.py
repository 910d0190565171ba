"""The CUDA path, on a real GPU: fp16 and bf16, cancel, CPU/GPU seed agreement, a real
out-of-memory error and its retry, fast mode and its fallback. Skipped where there is no CUDA
(the conftest marks them); run with ``pytest -m gpu`` on a machine with a GPU."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from desktop_app.engine import Engine, GenerationRequest
from desktop_app.engine.performance import Performance

pytestmark = pytest.mark.gpu


def request(model: str, **changes) -> GenerationRequest:
    base = GenerationRequest(prompt="a red circle on the left", model_id=model, scheduler="DDIM", steps=20,
                             guidance_scale=5.0, seed=1234, preview="latent")
    return base.replace(**changes)


def pixels(result) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.int16) for image in result.images])


@pytest.fixture(scope="module")
def cpu_shapes() -> np.ndarray:
    return pixels(Engine("cpu", "fp32").run(request("shapes", batch_size=2)))


@pytest.mark.parametrize(("precision", "mean_tolerance"), [("fp16", 3.0), ("bf16", 6.0)])
def test_the_gpu_draws_what_the_cpu_draws_for_a_seed(cpu_shapes, precision, mean_tolerance):
    """Noise is drawn on the CPU, so a seed is the same picture everywhere, within the precision's rounding."""
    engine = Engine("cuda", precision)
    result = engine.run(request("shapes", batch_size=2))
    assert result.device.startswith("cuda") and result.precision == precision
    gpu = pixels(result)
    assert gpu.shape == cpu_shapes.shape and gpu.std() > 5  # a picture, not a black or flat image
    difference = np.abs(gpu - cpu_shapes)
    assert difference.mean() < mean_tolerance, f"mean difference {difference.mean():.2f} (max {difference.max()})"


def test_cancel_on_the_gpu_stops_within_a_step_and_frees_the_job():
    import torch

    engine = Engine("cuda", "fp16")
    cancel = threading.Event()
    seen = []

    def on_step(update):
        seen.append(update.step)
        if update.step == 3:
            cancel.set()

    result = engine.run(request("shapes", steps=900), cancel, on_step=on_step)
    assert result.cancelled and result.images == [] and max(seen) <= 4
    torch.cuda.synchronize()
    assert engine.run(request("shapes", steps=4)).images  # the engine still works


def _peak_reserved(engine: Engine, req: GenerationRequest) -> int:
    import torch

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    engine.run(req)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_reserved()


def test_a_real_out_of_memory_error_is_retried_once_in_low_vram_mode(tiny_model):
    """Cap this process's GPU memory between what low-VRAM mode needs and what the normal path
    needs, so the normal path really runs out; the engine must retry in low-VRAM mode and say so."""
    import torch

    big = request(str(tiny_model), width=256, height=256, batch_size=8, steps=2, preview="off")
    normal_peak = _peak_reserved(Engine("cuda", "fp16"), big)
    low_peak = _peak_reserved(Engine("cuda", "fp16", performance=Performance(low_vram=True)), big)
    assert low_peak < 0.8 * normal_peak, (low_peak, normal_peak)  # what makes the retry worth doing
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction((low_peak + normal_peak) / 2 / total)
    try:
        engine = Engine("cuda", "fp16")
        result = engine.run(big)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert len(result.images) == 8
    assert "ran out of memory" in result.notes[0] and "low-VRAM" in result.notes[0]
    assert engine.load(str(tiny_model)).low_vram


def test_fast_mode_falls_back_when_compiling_fails(tiny_model):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("the compiler is missing")

    req = request(str(tiny_model), steps=4)
    normal = pixels(Engine("cuda", "fp16").run(req))
    fast = Engine("cuda", "fp16", performance=Performance(fast=True, compile_backend=broken_backend))
    result = fast.run(req)
    assert "fast mode is off" in result.notes[0] and "the compiler is missing" in result.notes[0]
    assert np.abs(pixels(result) - normal).max() <= 1


@pytest.mark.slow
def test_fast_mode_compiles_once_and_draws_the_same_picture(tiny_model):
    req = request(str(tiny_model), steps=8)
    normal = pixels(Engine("cuda", "fp16").run(req))
    fast = Engine("cuda", "fp16", performance=Performance(fast=True))
    phases = []
    first = fast.run(req, on_step=lambda update: phases.append(update.phase))
    assert phases[0] == "warm-up" and first.notes == [] and first.timings["warm-up"] > 0
    second = fast.run(req.replace(seed=99))
    assert "warm-up" not in second.timings
    assert np.abs(pixels(first) - normal).mean() < 2
