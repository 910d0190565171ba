"""The engine on a tiny real Stable Diffusion pipeline built from configs."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from desktop_app.backend.local.schedulers import build_scheduler
from desktop_app.core.schedulers import scheduler_names
from tests.backend.helpers import CPU, options
from tests.backend.helpers import recipe as request


def pixels(result) -> list[np.ndarray]:
    return [np.asarray(image) for image in result.images]


@pytest.mark.parametrize("name", scheduler_names())
def test_every_scheduler_makes_an_image(engine, tiny_model, name):
    result = engine.run(request(tiny_model, scheduler=name, steps=3), CPU)
    assert not result.cancelled
    assert len(result.images) == 1
    image = pixels(result)[0]
    assert image.shape == (64, 64, 3)
    assert image.std() > 1  # an image, not a flat fill


def test_same_seed_same_pixels(engine, tiny_model):
    first = pixels(engine.run(request(tiny_model, scheduler="Euler a"), CPU))
    second = pixels(engine.run(request(tiny_model, scheduler="Euler a"), CPU))
    other = pixels(engine.run(request(tiny_model, scheduler="Euler a", seed=99), CPU))
    assert np.array_equal(first[0], second[0])
    assert not np.array_equal(first[0], other[0])


def test_seed_none_is_picked_and_recorded(engine, tiny_model):
    result = engine.run(request(tiny_model, seed=None, batch_size=2), CPU)
    seed = result.recipe.output.seed
    assert seed is not None
    assert result.seeds == [seed, seed + 1]
    again = engine.run(request(tiny_model, seed=seed, batch_size=2), CPU)
    assert all(np.array_equal(a, b) for a, b in zip(pixels(result), pixels(again), strict=True))


@pytest.mark.parametrize("name", ["DPM++ 2M", "Euler a", "DDIM"])
def test_engine_equals_plain_diffusers(engine, tiny_model, name):
    req = request(tiny_model, scheduler=name, steps=5, batch_size=2, eta=0.0)
    ours = pixels(engine.run(req, CPU))
    pipe = engine.load(str(tiny_model), CPU).pipe
    pipe.scheduler = build_scheduler(name, engine.model_info(str(tiny_model)).scheduler_config)
    generators = [torch.Generator("cpu").manual_seed(req.output.seed + k) for k in range(2)]
    theirs = pipe(req.prompt.text, num_inference_steps=5, guidance_scale=7.5, num_images_per_prompt=2, generator=generators).images
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(ours, theirs, strict=True))


def test_batch_image_k_uses_seed_plus_k(engine, tiny_model):
    batch = pixels(engine.run(request(tiny_model, batch_size=2, seed=500), CPU))
    single = pixels(engine.run(request(tiny_model, batch_size=1, seed=501), CPU))
    assert np.abs(batch[1].astype(int) - single[0].astype(int)).max() <= 2  # same noise; batched maths may round differently


def test_ddim_eta_zero_ignores_step_noise_eta_one_does_not(engine, tiny_model):
    def run(eta, delta):
        return pixels(engine.run(request(tiny_model, eta=eta, noise_seed_delta=delta, steps=6), CPU))[0]

    assert np.array_equal(run(0.0, 0), run(0.0, 777))  # deterministic DDIM: only x_T matters
    assert not np.array_equal(run(1.0, 0), run(1.0, 777))  # η = 1 injects fresh noise every step


def test_ddpm_variance_choices_differ(engine, tiny_model):
    small = pixels(engine.run(request(tiny_model, scheduler="DDPM", ddpm_variance="fixed_small", steps=6), CPU))[0]
    large = pixels(engine.run(request(tiny_model, scheduler="DDPM", ddpm_variance="fixed_large", steps=6), CPU))[0]
    assert not np.array_equal(small, large)


def test_guidance_scale_changes_the_image(engine, tiny_model):
    cfg = pixels(engine.run(request(tiny_model, guidance_scale=7.5), CPU))[0]
    plain = pixels(engine.run(request(tiny_model, guidance_scale=1.0), CPU))[0]
    assert not np.array_equal(cfg, plain)


@pytest.mark.parametrize("mode", ["latent", "vae"])
def test_previews_arrive_before_the_result(engine, tiny_model, mode):
    updates = []
    steps = engine.generate(request(tiny_model, steps=5), options(preview=mode), max_fps=0)
    while True:
        try:
            updates.append(next(steps))
        except StopIteration as stop:
            result = stop.value
            break
    previews = [u.preview for u in updates if u.preview is not None]
    assert [u.step for u in updates] == [1, 2, 3, 4, 5]
    assert len(previews) == 5
    height = 32 if mode == "latent" else 64  # the latent map is at latent resolution
    assert previews[0].shape == (height, height, 3) and previews[0].dtype == np.uint8
    assert len(result.images) == 1


def test_preview_off_sends_no_frames(engine, tiny_model):
    updates = []
    engine.run(request(tiny_model), options(preview="off"), on_step=updates.append)
    assert updates and all(u.preview is None for u in updates)


def test_previews_are_throttled_by_wall_clock(engine, tiny_model):
    steps = engine.generate(request(tiny_model, steps=6), options(preview="latent"), max_fps=0.01)  # one frame per 100 s
    updates = list(_drain(steps))
    assert [u.preview is not None for u in updates] == [True, False, False, False, False, False]


def _drain(steps):
    while True:
        try:
            yield next(steps)
        except StopIteration:
            return


def test_cancel_stops_within_a_step_and_returns_no_image(engine, tiny_model):
    cancel = threading.Event()
    seen = []

    def on_step(update):
        seen.append(update.step)
        if update.step == 2:
            cancel.set()

    result = engine.run(request(tiny_model, steps=20), CPU, cancel, on_step=on_step)
    assert result.cancelled
    assert result.images == []
    assert seen == [1, 2]


def test_a_long_prompt_is_used_whole_in_75_token_chunks(engine, tiny_model):
    """Words beyond the text encoder's 75 tokens used to be dropped with a warning; they are now encoded
    in a second chunk (as A1111 does), so they change the picture and nothing is warned about."""
    words = " ".join(["red circle"] * 40)
    long = engine.run(request(tiny_model, prompt=words + " purple castle", steps=2, seed=3), CPU)
    cut = engine.run(request(tiny_model, prompt=words, steps=2, seed=3), CPU)
    assert long.images and not long.warnings and not cut.warnings
    assert not np.array_equal(np.asarray(long.images[0]), np.asarray(cut.images[0]))


def test_timings_and_resolved_request(engine, tiny_model):
    result = engine.run(request(tiny_model, width=None, height=None), CPU)
    assert (result.recipe.output.width, result.recipe.output.height) == (64, 64)
    assert {"prepare", "denoise", "decode", "total", "load"} <= set(result.timings)
    assert result.device == "cpu" and result.precision == "fp32"


def test_an_fp16_decode_that_overflows_is_decoded_again_in_fp32(tiny_model):
    """The black-image problem for real: a half-precision VAE whose activations pass 65504."""
    from desktop_app.backend.local.decode import Decoder
    from desktop_app.backend.local.engine import Engine

    loaded = Engine().load(str(tiny_model), CPU)  # its own copy of the weights
    vae = loaded.pipe.vae
    with torch.no_grad():
        vae.decoder.conv_in.weight.mul_(3e4)  # fine in fp32, infinite in fp16
    vae.half()
    latents = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0)).half()
    with torch.no_grad():
        assert not torch.isfinite(vae.decode(latents / vae.config.scaling_factor).sample).all()
        notes = []
        images = Decoder(loaded.pipe).images(latents, [torch.Generator().manual_seed(0)], notes)
    assert notes == ["the fp16 decode produced NaNs, so the image was decoded again in fp32"]
    assert np.asarray(images[0]).std() > 1  # a picture, not black
    assert vae.dtype == torch.float16  # and the VAE is back in the precision it runs in


@pytest.mark.parametrize(("step_seconds", "low", "high"), [(0.06, 48, 55), (0.01, 50, 55), (0.2, 18, 18)])
def test_preview_cadence_keeps_close_to_the_cap_and_never_over(monkeypatch, step_seconds, low, high):
    """With a fake clock: 15 frames/s over 3.6 s of steps is at most 54 (+1 for the first frame);
    steps a bit slower than 1/15 s must not halve that, as restarting the wait at each frame did."""
    from desktop_app.backend.local import previews

    clock = [0.0]
    monkeypatch.setattr(previews.time, "perf_counter", lambda: clock[0])
    previewer = previews.Previewer("latent", factors={"matrix": [[0.1] * 3] * 4}, max_fps=15)
    frames = 0
    while clock[0] < 3.6 - 1e-9:
        clock[0] += step_seconds
        if previewer.due(0):
            assert previewer.submit(torch.zeros(1, 4, 2, 2)) is not None
            frames += 1
    assert low <= frames <= high


@pytest.mark.parametrize(("decode_seconds", "low", "high"), [(0.016, 3, 5), (0.0005, 20, 20), (0.5, 1, 1)])
def test_full_decode_previews_keep_to_their_share_of_the_run(decode_seconds, low, high):
    """Steps of 28 ms (Shapes on this CPU): a 16 ms decode shows a few frames and costs at most
    about a tenth of the run; a cheap decode shows every step; one that costs more than the whole
    run shows the first frame only."""
    from desktop_app.backend.local import previews

    clock = [0.0]

    def decode(latents):
        clock[0] += decode_seconds
        return torch.zeros(latents.shape[0], 3, 8, 8)

    previewer = previews.Previewer("vae", factors=None, decode=decode, max_fps=1000, clock=lambda: clock[0])  # no cap
    frames = 0
    for step in range(20):
        clock[0] += 0.028
        if previewer.due(step):
            previewer.submit(torch.zeros(1, 4, 2, 2))
            frames += 1
    assert low <= frames <= high
    assert previewer.decode_seconds == pytest.approx(frames * decode_seconds)
    if frames > 1:
        assert previewer.decode_seconds <= previews.VAE_BUDGET * clock[0] + decode_seconds


@pytest.mark.parametrize("t", [999, 500, 20])
def test_classifier_guidance_moves_a_v_prediction_the_same_as_an_epsilon_prediction(t):
    """For one x_t, guiding v must imply the same guided x₀ as guiding ε does."""
    from desktop_app.backend.local.classifier import LatentClassifier
    from desktop_app.backend.local.hooks import ClassifierGuidance
    from desktop_app.backend.local.loop import alpha_bars
    from desktop_app.backend.local.loop import x0_estimate as _x0_estimate

    torch.manual_seed(0)
    classifier = LatentClassifier({"shape": ["circle", "square"]}, in_channels=4, width=8, t_dim=16).eval()
    scheduler = build_scheduler("DDPM", {"num_train_timesteps": 1000, "beta_schedule": "linear"})
    x_t, eps = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    alpha_bar = alpha_bars(scheduler, [t])[0]
    assert alpha_bar == pytest.approx(float(scheduler.alphas_cumprod[t]))
    v = (eps - math.sqrt(1 - alpha_bar) * x_t) / math.sqrt(alpha_bar)
    assert torch.allclose(_x0_estimate(x_t, v, alpha_bar, "v_prediction"), _x0_estimate(x_t, eps, alpha_bar, "epsilon"), atol=1e-3)

    guidance = ClassifierGuidance(classifier, {"shape": 1}, 5.0)
    guided_eps = guidance.shift(x_t, float(t), alpha_bar, eps, "epsilon")
    guided_v = guidance.shift(x_t, float(t), alpha_bar, v, "v_prediction")
    assert not torch.allclose(guided_eps, eps)
    x0_eps = _x0_estimate(x_t, guided_eps, alpha_bar, "epsilon")
    x0_v = _x0_estimate(x_t, guided_v, alpha_bar, "v_prediction")
    assert torch.allclose(x0_v, x0_eps, rtol=1e-3, atol=1e-3 * float(x0_eps.abs().max()))


def test_a_format_1_image_is_made_again_pixel_for_pixel_from_its_restored_recipe(engine):
    """The committed PNG was written before the recipe had parts; restoring it and running it again
    must give the very same picture (the same shipped model: its hash is in the file)."""
    from pathlib import Path

    from PIL import Image

    from desktop_app.backend.local.hashes import sha256_of
    from desktop_app.gallery.metadata import read_metadata

    png = Path(__file__).parents[1] / "data" / "v1-shapes-ddim-classifier-batch1.png"
    meta = read_metadata(png)
    shipped = engine.model_info("shapes")
    # images of that time carry the hash of the model's UNet file (folder models have none now)
    if sha256_of(Path(shipped.path) / "unet" / "diffusion_pytorch_model.safetensors")[:10] != meta.info["model"]["hash"]:
        pytest.skip("the built-in model was retrained since the image was made")
    again = engine.run(meta.recipe(), CPU)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(Image.open(png).convert("RGB")))
