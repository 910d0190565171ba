"""Every kind of bad recipe gets its own clear message, all at once; recipes and run options keep apart."""

from __future__ import annotations

import pytest

from desktop_app.backend.local.discovery import inspect_model
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import AddOn, Recipe, RecipeError, Source
from desktop_app.core.schedulers import scheduler_names


@pytest.fixture(scope="module")
def tiny_info(tiny_model):
    return inspect_model(tiny_model)


def fields(problems) -> list[str]:
    return [p.field for p in problems]


def test_a_good_recipe_has_no_problems(tiny_info):
    assert Recipe.of("a cat", model_id="tiny").validate(tiny_info) == []


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"steps": 0}, "sampling.steps", "from 1 to 1000"),
        ({"steps": 5000}, "sampling.steps", "from 1 to 1000"),
        ({"width": 71}, "output.width", "multiple of 2"),
        ({"height": 1024}, "output.height", "from 16 to 256"),
        ({"guidance_scale": -1.0}, "guidance.scale", "from 0 to 50"),
        ({"guidance_scale": float("nan")}, "guidance.scale", "not nan"),
        ({"classifier_scale": float("inf")}, "guidance.classifier_scale", "not inf"),
        ({"eta": 1.5}, "sampling.eta", "between 0"),
        ({"seed": -4}, "output.seed", "from 0 to 4294967295"),
        ({"seed": 2**32 - 1, "batch_size": 2}, "output.seed", "seed + k"),
        ({"scheduler": "Euler b"}, "sampling.scheduler", "unknown scheduler 'Euler b'"),
        ({"batch_size": 0}, "output.batch_size", "from 1 to 16"),
        ({"ddpm_variance": "huge"}, "sampling.ddpm_variance", "fixed_small"),
        ({"noise_seed_delta": -1}, "sampling.noise_seed_delta", "ENSD"),
        ({"classifier_target": "circle", "classifier_scale": 2.0}, "guidance.classifier_target", "ships no classifier"),
        ({"add_ons": (AddOn("hat", "x.safetensors"),)}, "model.add_ons.0", "lora, vae, embedding"),
    ],
)
def test_each_bad_field_is_named_with_an_actionable_message(tiny_info, changes, field, words):
    problems = Recipe.of("a cat", **changes).validate(tiny_info)
    assert fields(problems) == [field]
    assert words in problems[0].message


def test_all_problems_are_reported_at_once(tiny_info):
    bad = Recipe.of("x", steps=0, width=33, eta=2.0, guidance_scale=-3.0, scheduler="nope")
    assert set(fields(bad.validate(tiny_info))) == {"sampling.steps", "output.width", "sampling.eta", "guidance.scale",
                                                    "sampling.scheduler"}


def test_unknown_model_is_a_problem():
    problems = Recipe.of("x", model_id="missing").validate(None)
    assert fields(problems) == ["model.id"]
    assert "diffuse-studio models" in problems[0].message


def test_size_suggests_valid_neighbours(tiny_info):
    (problem,) = Recipe.of("x", width=65).validate(tiny_info)
    assert "try 64 or 66" in problem.message


def test_a_recipe_round_trips_through_both_dict_forms():
    original = Recipe.of("a cat", seed=7, scheduler="DDIM", eta=0.5, add_ons=[AddOn("lora", "ink", 0.7)])
    original = original.with_(source=Source("init.png", "mask.png", 0.6))
    nested = original.to_dict() | {"from_a_newer_version": True}
    assert Recipe.from_dict(nested) == original
    assert Recipe.from_flat(original.flat() | {"preview": "vae"}) == original  # format 1's run options are ignored
    with pytest.raises(RecipeError, match="no prompt"):
        Recipe.from_flat({"seed": 1})
    with pytest.raises(RecipeError, match="no prompt"):
        Recipe.from_dict({"sampling": {}})


def test_run_options_are_not_part_of_the_recipe_and_check_themselves():
    assert "preview" not in Recipe.of("a cat").flat() and "device" not in Recipe.of("a cat").to_dict()
    problems = RunOptions(device="tpu", preview="video", preview_every=0, preview_max_fps=float("nan")).problems()
    assert [p.field for p in problems] == ["options.device", "options.preview", "options.preview_every",
                                           "options.preview_max_fps"]
    assert RunOptions().problems() == []


@pytest.mark.parametrize("name", scheduler_names())
def test_every_scheduler_runs_its_whole_step_range_and_refuses_beyond(tiny_info, name):
    """The limits are what diffusers really runs: both ends give a finite sample, one past is refused."""
    import inspect

    import torch

    from desktop_app.backend.local.schedulers import build_scheduler
    from desktop_app.core.schedulers import step_range

    low, high = step_range(name, tiny_info.scheduler_config)
    for steps in (low, high):
        scheduler = build_scheduler(name, tiny_info.scheduler_config)
        scheduler.set_timesteps(steps)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(1, 4, 4, 4, generator=generator) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            eps = 0.5 * scheduler.scale_model_input(x, t)  # a stand-in for the UNet: smooth in x
            extra = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
            x = scheduler.step(eps, t, x, **extra).prev_sample
        assert torch.isfinite(x).all(), f"{name} at {steps} steps"
        ok = Recipe.of("a cat", model_id="tiny", scheduler=name, steps=steps)
        assert ok.validate(tiny_info) == []
    for steps in (low - 1, high + 1):
        problems = Recipe.of("a cat", model_id="tiny", scheduler=name, steps=steps).validate(tiny_info)
        assert fields(problems) == ["sampling.steps"], (steps, problems)
        assert name in problems[0].message or steps in (0, 1001)  # past 1..1000 the general rule speaks
