"""A second pass (hires fix, a second model) and variations of a seed, on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from desktop_app.backend.local.prepare import initial_noise
from desktop_app.core.recipe import HiresFix, Recipe, Variation
from tests.backend.helpers import CPU
from tests.backend.helpers import recipe as request


def pixels(result) -> list[np.ndarray]:
    return [np.asarray(image) for image in result.images]


@pytest.fixture(scope="module")
def other_tiny(tmp_path_factory):
    """A second tiny model of the same family with other weights (a "second loaded model")."""
    from desktop_app.backend.local.architectures import build_sd_folder

    return build_sd_folder(tmp_path_factory.mktemp("other") / "tiny-other", seed=1, name="Other tiny")


@pytest.mark.parametrize("upscaler", ["latent", "lanczos"])
def test_hires_fix_upscales_and_runs_a_second_pass(engine, tiny_model, upscaler):
    updates = []
    hires = HiresFix(scale=1.5, steps=6, strength=0.5, upscaler=upscaler)
    result = engine.run(request(tiny_model, steps=4, hires=hires), CPU, on_step=updates.append)
    assert result.images[0].size == (96, 96)
    assert [u.step for u in updates] == [1, 2, 3, 4, 5, 6, 7] and {u.total for u in updates} == {7}  # 4 + int(6 · 0.5)
    assert [(p["width"], p["steps"], p["steps_run"]) for p in result.passes] == [(64, 4, 4), (96, 6, 3)]
    assert result.recipe.output.width == 64  # the recipe keeps the first pass's size, as A1111's "Size" does


def test_hires_second_pass_on_another_model(engine, tiny_model, other_tiny):
    hires = HiresFix(scale=1.0, steps=4, strength=0.5, model_id=str(other_tiny))
    same = pixels(engine.run(request(tiny_model, hires=HiresFix(scale=1.0, steps=4, strength=0.5)), CPU))[0]
    other = engine.run(request(tiny_model, hires=hires), CPU)
    assert [p["model"] for p in other.passes] == [str(tiny_model), str(other_tiny)]
    assert not np.array_equal(pixels(other)[0], same)


def test_hires_needs_a_size_the_model_makes(engine, tiny_model):
    from desktop_app.backend.local.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="beyond what"):
        engine.run(request(tiny_model, hires=HiresFix(scale=4.0)).with_(width=128, height=128), CPU)


def test_variation_strength_zero_is_the_seed_and_one_is_the_variation_seed(engine, tiny_model):
    plain = pixels(engine.run(request(tiny_model, seed=10), CPU))[0]
    zero = pixels(engine.run(request(tiny_model, seed=10, variation=Variation(seed=77, strength=0.0)), CPU))[0]
    full = pixels(engine.run(request(tiny_model, seed=10, variation=Variation(seed=77, strength=1.0)), CPU))[0]
    seventy_seven = pixels(engine.run(request(tiny_model, seed=77), CPU))[0]  # DDIM η = 0: only x_T matters
    halfway = pixels(engine.run(request(tiny_model, seed=10, variation=Variation(seed=77, strength=0.5)), CPU))[0]
    assert np.array_equal(zero, plain) and np.array_equal(full, seventy_seven)
    assert not np.array_equal(halfway, plain) and not np.array_equal(halfway, seventy_seven)


def test_a_batch_of_variations_shares_the_seed_and_steps_the_variation_seed(engine, tiny_model):
    recipe = request(tiny_model, seed=10, batch_size=2, variation=Variation(seed=77, strength=0.3))
    result = engine.run(recipe, CPU)
    assert result.seeds == [10, 10]
    second = result.recipe.for_image(1)
    assert second.output.seed == 10 and second.variation.seed == 78
    alone = pixels(engine.run(second, CPU))[0]
    assert np.abs(alone.astype(int) - pixels(result)[1].astype(int)).max() <= 2  # batched maths may round differently


def test_seed_resize_from_centres_the_smaller_noise(tiny_model, engine):
    from desktop_app.backend.local.generate import Job

    loaded = engine.load(str(tiny_model), CPU)
    recipe = engine.resolve(Recipe.of("x", model_id=str(tiny_model), seed=5, variation=Variation(
        resize_from_width=32, resize_from_height=48)), loaded.info)
    noise = initial_noise(Job(loaded, recipe, CPU, None, 0), (1, 4, 32, 32))
    small = torch.randn((1, 4, 24, 16), generator=torch.Generator("cpu").manual_seed(5))
    assert torch.equal(noise[:, :, 4:28, 8:24], small)  # the 16×24 latent noise in the middle of the 32×32
    same_size = engine.resolve(recipe.with_(variation=Variation(resize_from_width=64, resize_from_height=64)), loaded.info)
    plain = engine.resolve(recipe.with_(variation=None), loaded.info)
    assert np.array_equal(pixels(engine.run(same_size, CPU))[0], pixels(engine.run(plain, CPU))[0])


def test_an_sdxl_refiner_is_a_second_pass_over_the_end_of_the_schedule(engine, tiny_xl, tmp_path):
    from desktop_app.backend.local.architectures import build_sd_folder

    refiner = build_sd_folder(tmp_path / "tiny-refiner", arch="tiny-sdxl", seed=2, name="Tiny refiner", refiner=True)
    info = engine.model_info(str(refiner))
    assert info.kind == "refiner"
    updates = []
    recipe = request(tiny_xl, "a red circle", scheduler="Euler", steps=5, width=64, height=64,
                     hires=HiresFix(scale=1.0, strength=0.4, model_id=str(refiner)))
    result = engine.run(recipe, CPU, on_step=updates.append)
    assert [(p["model"], p["steps_run"]) for p in result.passes] == [(str(tiny_xl), 5), (str(refiner), 2)]
    assert updates[-1].step == updates[-1].total == 7 and result.images[0].size == (64, 64)
    base_only = pixels(engine.run(recipe.with_(hires=None), CPU))[0]
    assert not np.array_equal(pixels(result)[0], base_only)  # the refiner redrew the last steps
