"""The shipped Shapes model, end to end through the app's own engine (CPU, deterministic)."""

from __future__ import annotations

import json

import pytest

from desktop_app.builtin.analyse import analyse
from desktop_app.builtin.train import default_out

MODEL = default_out()
pytestmark = pytest.mark.skipif(not (MODEL / "model_index.json").exists(), reason="models/shapes is not trained yet")

# (prompt, seed, colour, shape): fixed seeds, checked once against the analyser; CPU is deterministic
PROMPTS = [
    ("a red circle", 1, "red", "circle"),
    ("a blue square on the left", 2, "blue", "square"),
    ("a green triangle at the top", 3, "green", "triangle"),
    ("a yellow star in the centre", 4, "yellow", "star"),
    ("an orange ring", 5, "orange", "ring"),
    ("a pink heart on a black background", 6, "pink", "heart"),
]


@pytest.fixture(scope="module")
def engine():
    import torch

    from desktop_app.engine import Engine

    torch.set_num_threads(2)
    return Engine(device="cpu")


def _generate(engine, prompt: str, seed: int, **settings):
    from desktop_app.engine import GenerationRequest

    request = GenerationRequest(prompt=prompt, model_id=str(MODEL), scheduler="DDIM", steps=20, guidance_scale=5.0, seed=seed, preview="off")
    return engine.run(request.replace(**settings)).images[0]


def test_model_folder_is_complete_and_small():
    info = json.loads((MODEL / "diffuse_studio.json").read_text())
    assert info["family"] == "built-in" and len(info["preview_factors"]["matrix"]) == 4
    classifier = json.loads((MODEL / "classifier" / "config.json").read_text())
    assert set(classifier["heads"]) == {"shape", "colour"}
    size = sum(p.stat().st_size for p in MODEL.rglob("*") if p.is_file())
    assert size <= 30 * 1024 * 1024


def test_loads_through_the_engine_and_generates_a_64_pixel_picture(engine):
    image = _generate(engine, "a red circle", 0)
    assert image.size == (64, 64)
    assert engine.model_info(str(MODEL)).has_classifier


@pytest.mark.parametrize(("prompt", "seed", "colour", "shape"), PROMPTS)
def test_fixed_seed_prompts_give_the_asked_for_object(engine, prompt, seed, colour, shape):
    main = analyse(_generate(engine, prompt, seed)).main
    assert main is not None and (main.colour, main.shape) == (colour, shape)


def test_same_seed_gives_the_same_picture(engine):
    assert _generate(engine, "a blue star", 9).tobytes() == _generate(engine, "a blue star", 9).tobytes()
