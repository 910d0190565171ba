"""Every kind of bad request gets its own clear message, all at once."""

from __future__ import annotations

import pytest

from desktop_app.engine import GenerationRequest, inspect_model
from desktop_app.engine.schedulers import scheduler_names


@pytest.fixture(scope="module")
def tiny_info(tiny_model):
    return inspect_model(tiny_model)


def fields(problems) -> list[str]:
    return [p.field for p in problems]


def test_a_good_request_has_no_problems(tiny_info):
    assert GenerationRequest(prompt="a cat", model_id="tiny").validate(tiny_info) == []


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"steps": 0}, "steps", "from 1 to 1000"),
        ({"steps": 5000}, "steps", "from 1 to 1000"),
        ({"width": 71}, "width", "multiple of 2"),
        ({"height": 1024}, "height", "from 16 to 256"),
        ({"guidance_scale": -1.0}, "guidance_scale", "between 0"),
        ({"eta": 1.5}, "eta", "between 0"),
        ({"seed": -4}, "seed", "from 0 to 4294967295"),
        ({"seed": 2**32 - 1, "batch_size": 2}, "seed", "seed + k"),
        ({"scheduler": "Euler b"}, "scheduler", "unknown scheduler 'Euler b'"),
        ({"batch_size": 0}, "batch_size", "from 1 to 16"),
        ({"ddpm_variance": "huge"}, "ddpm_variance", "fixed_small"),
        ({"preview": "video"}, "preview", "latent"),
        ({"classifier_target": "circle", "classifier_scale": 2.0}, "classifier_target", "ships no classifier"),
    ],
)
def test_each_bad_field_is_named_with_an_actionable_message(tiny_info, changes, field, words):
    problems = GenerationRequest(prompt="a cat", **changes).validate(tiny_info)
    assert fields(problems) == [field]
    assert words in problems[0].message


def test_all_problems_are_reported_at_once(tiny_info):
    bad = GenerationRequest(prompt="x", steps=0, width=33, eta=2.0, guidance_scale=-3.0, scheduler="nope")
    assert set(fields(bad.validate(tiny_info))) == {"steps", "width", "eta", "guidance_scale", "scheduler"}


def test_unknown_model_is_a_problem():
    problems = GenerationRequest(prompt="x", model_id="missing").validate(None)
    assert fields(problems) == ["model"]
    assert "diffuse-studio models" in problems[0].message


def test_size_suggests_valid_neighbours(tiny_info):
    (problem,) = GenerationRequest(prompt="x", width=65).validate(tiny_info)
    assert "try 64 or 66" in problem.message


def test_request_round_trips_through_a_dict():
    original = GenerationRequest(prompt="a cat", seed=7, scheduler="DDIM", eta=0.5)
    data = original.to_dict() | {"from_a_newer_version": True}
    assert GenerationRequest.from_dict(data) == original
    with pytest.raises(ValueError, match="no prompt"):
        GenerationRequest.from_dict({"seed": 1})


@pytest.mark.parametrize("name", scheduler_names())
def test_every_scheduler_runs_its_whole_step_range_and_refuses_beyond(tiny_info, name):
    """The limits are what diffusers really runs: both ends give a finite sample, one past is refused."""
    import inspect

    import torch

    from desktop_app.engine.schedulers import build_scheduler, step_range

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
        ok = GenerationRequest(prompt="a cat", model_id="tiny", scheduler=name, steps=steps)
        assert ok.validate(tiny_info) == []
    for steps in (low - 1, high + 1):
        problems = GenerationRequest(prompt="a cat", model_id="tiny", scheduler=name, steps=steps).validate(tiny_info)
        assert fields(problems) == ["steps"], (steps, problems)
        assert name in problems[0].message or steps in (0, 1001)  # past 1..1000 the general rule speaks
