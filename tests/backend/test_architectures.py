"""The shipped architecture configs build the real networks, and the engine runs the XL layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from desktop_app.backend.local.architectures import random_pipeline
from desktop_app.backend.local.schedulers import build_scheduler
from tests.backend.helpers import options, recipe

# Published parameter counts of the released Stable Diffusion 1.5 and SDXL base networks.
PUBLISHED = {
    "sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sdxl": {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840},
}


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_configs_build_networks_the_size_of_the_released_ones(arch, tmp_path):
    info, pipe = random_pipeline(arch, "meta", torch.float16, tmp_path / arch)  # "meta": no memory, no time
    counts = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) for name in PUBLISHED[arch]}
    assert counts == PUBLISHED[arch]
    assert (info.family, info.native_size, info.latent_factor) == (
        ("SD 1.x", (512, 512), 8) if arch == "sd15" else ("SDXL", (1024, 1024), 8))


def test_the_engine_draws_what_the_sdxl_pipeline_draws(engine, tiny_xl):
    info = engine.model_info(str(tiny_xl))
    assert info.family == "SDXL"
    req = recipe(tiny_xl, "a red circle", negative_prompt="blue", scheduler="Euler", steps=4, guidance_scale=6.0, seed=3,
                 batch_size=2)
    ours = engine.run(req, options(preview="latent"))
    pipe = engine.load(str(tiny_xl), options()).pipe
    pipe.scheduler = build_scheduler("Euler", info.scheduler_config)
    w, h = ours.recipe.output.width, ours.recipe.output.height
    theirs = pipe(req.prompt.text, negative_prompt=req.prompt.negative, num_inference_steps=4, guidance_scale=6.0,
                  num_images_per_prompt=2, width=w, height=h,
                  generator=[torch.Generator("cpu").manual_seed(3 + k) for k in range(2)]).images
    for a, b in zip(ours.images, theirs, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
