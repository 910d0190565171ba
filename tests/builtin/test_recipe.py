"""Recipe overrides, the step budget and the loss weighting of the Shapes training."""

from __future__ import annotations

import pytest
import torch

from desktop_app.builtin import architecture as arch
from desktop_app.builtin.train import fit_steps, loss_weight, parse_args, training_target, with_overrides


def test_overrides_read_each_value_as_its_fields_type():
    recipe = with_overrides(arch.RECIPES["cpu"], ["unet_steps=5", "unet_lr=0.5", "unet_channels=8,16", "prediction_type=epsilon"])
    assert (recipe.unet_steps, recipe.unet_lr, recipe.unet_channels, recipe.prediction_type) == (5, 0.5, (8, 16), "epsilon")
    assert arch.RECIPES["cpu"].unet_steps != 5  # the named recipe itself is untouched
    assert with_overrides(recipe, ["pool_object_counts=0.3,0.5,0.2"]).pool_object_counts == (0.3, 0.5, 0.2)


@pytest.mark.parametrize(("item", "message"), [("nonsense=1", "FIELD one of"), ("unet_steps", "FIELD=VALUE"), ("unet_steps=many", "not a valid int")])
def test_a_bad_override_is_a_usage_error_naming_the_problem(item, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--set", item])
    assert message in capsys.readouterr().err


def test_fit_steps_keeps_the_total_when_it_fits_and_cuts_it_when_not():
    assert fit_steps(100, 1000, 0.01, 100.0) == 1000
    assert fit_steps(100, 1000, 1.0, 100.0) == 197  # 97% of the 100 s left, at 1 s a step
    assert fit_steps(100, 1000, 1.0, -5.0) == 101  # out of time: stop after this step


def test_v_prediction_weights_every_noise_level_about_evenly_on_x0():
    """x₀-MSE weight = loss weight × (1 + SNR) for v: between 1 and γ + 1 at every level."""
    recipe = arch.RECIPES["cpu"]
    alpha_bar = arch.make_scheduler().alphas_cumprod
    snr = alpha_bar / (1 - alpha_bar)
    on_x0 = loss_weight(alpha_bar, recipe) * (1 + snr)
    assert on_x0.min() >= 1.0 - 1e-6 and on_x0.max() <= recipe.snr_gamma + 1 + 1e-6
    eps_recipe = with_overrides(recipe, ["prediction_type=epsilon"])
    on_x0_eps = loss_weight(alpha_bar, eps_recipe) * snr  # ε-MSE = SNR · x₀-MSE
    assert on_x0_eps[-1] < 1e-3  # what made the ε models ignore layout at high noise


def test_the_v_target_gives_back_x0_and_noise():
    scheduler = arch.make_scheduler()
    x0, noise, t = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8), torch.tensor([10, 500, 990])
    xt = scheduler.add_noise(x0, noise, t)
    v = training_target(scheduler, x0, noise, t, "v_prediction")
    a = scheduler.alphas_cumprod[t].sqrt().view(-1, 1, 1, 1)
    s = (1 - scheduler.alphas_cumprod[t]).sqrt().view(-1, 1, 1, 1)
    assert torch.allclose(a * xt - s * v, x0, atol=1e-4)
    assert torch.allclose(s * xt + a * v, noise, atol=1e-4)
    assert training_target(scheduler, x0, noise, t, "epsilon") is noise
