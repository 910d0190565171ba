"""Class 1: well-formed JSON of the wrong shape in any model file never hides the other models.

Each case damages one value in a copy of the built-in model, then asks `diffuse-studio models`
(and, at the end, the window) what it sees: the built-in model is still listed, the damaged
folder is reported on one line naming the file and the field, and nothing raises.
"""

from __future__ import annotations

import math

import pytest

from desktop_app.cli.main import main
from tests.faults.conftest import edit_json, listed_models, model_copy, no_traceback, run_cli


def _set(**values):
    return lambda data: data.update(values)


def _set_in(key, **values):
    return lambda data: data[key].update(values)


# (file, change, the problem the user is told, after "<folder>/<file>: ")
CASES = {
    "unet-empty-list": ("model_index.json", _set(unet=[]), "field 'unet' should be [library, class], not []"),
    "unet-custom-code": ("model_index.json", _set(unet=["my_code", "MyUNet"]),
                         "field 'unet' names 'my_code': only diffusers and transformers parts can be loaded "
                         "(Diffuse Studio runs no code from a model folder)"),
    "class-name-list": ("model_index.json", _set(_class_name=[]), "field '_class_name' should be text, not []"),
    "vae-channels-number": ("vae/config.json", _set(block_out_channels=5),
                            "field 'block_out_channels' should be a list of positive whole numbers, not 5"),
    "vae-channels-zero": ("vae/config.json", _set(block_out_channels=[64, 0]),
                          "field 'block_out_channels' should be a list of positive whole numbers, not [64, 0]"),
    "vae-latent-text": ("vae/config.json", _set(latent_channels="4"),
                        "field 'latent_channels' should be a whole number from 1 to 64, not \"4\""),
    "vae-latent-zero": ("vae/config.json", _set(latent_channels=0),
                        "field 'latent_channels' should be a whole number from 1 to 64, not 0"),
    "vae-scaling-text": ("vae/config.json", _set(scaling_factor="x"),
                         "field 'scaling_factor' should be a number above 0, not \"x\""),
    "unet-sample-list": ("unet/config.json", _set(sample_size=[]),
                         "field 'sample_size' should be a list of positive whole numbers, not []"),
    "unet-sample-negative": ("unet/config.json", _set(sample_size=-8),
                             "field 'sample_size' should be a whole number from 1 to 4096, not -8"),
    "unet-in-text": ("unet/config.json", _set(in_channels="x"),
                     "field 'in_channels' should be a whole number from 1 to 64, not \"x\""),
    "unet-not-object": ("unet/config.json", lambda data: [data], "should hold a JSON object"),
    "scheduler-train-text": ("scheduler/scheduler_config.json", _set(num_train_timesteps="x"),
                             "field 'num_train_timesteps' should be a whole number from 2 to 100000, not \"x\""),
    "scheduler-train-list": ("scheduler/scheduler_config.json", _set(num_train_timesteps=[]),
                             "field 'num_train_timesteps' should be a whole number from 2 to 100000, not []"),
    "scheduler-offset-text": ("scheduler/scheduler_config.json", _set(steps_offset="1"),
                              "field 'steps_offset' should be a whole number from 0 to 999, not \"1\""),
    "scheduler-spacing": ("scheduler/scheduler_config.json", _set(timestep_spacing=5),
                          "field 'timestep_spacing' should be one of leading, linspace, trailing, not 5"),
    "scheduler-betas": ("scheduler/scheduler_config.json", _set(beta_schedule="wobbly"),
                        "field 'beta_schedule' should be one of linear, scaled_linear, squaredcos_cap_v2, not \"wobbly\""),
    "scheduler-prediction": ("scheduler/scheduler_config.json", _set(prediction_type=None),
                             "field 'prediction_type' should be one of epsilon, v_prediction, sample, not null"),
    "scheduler-beta-start": ("scheduler/scheduler_config.json", _set(beta_start=math.inf),
                             "field 'beta_start' should be a number from 0 to 1, not Infinity"),
    "scheduler-trained-betas": ("scheduler/scheduler_config.json", _set(trained_betas="x"),
                                "field 'trained_betas' should be null or a list of numbers from 0 to 1, not \"x\""),
    "scheduler-lcm-steps": ("scheduler/scheduler_config.json", _set(original_inference_steps=0),
                            "field 'original_inference_steps' should be a whole number from 1 to 1000, not 0"),
    "defaults-list": ("diffuse_studio.json", _set(defaults=[]), "field 'defaults' should be an object, not []"),
    "defaults-steps-text": ("diffuse_studio.json", _set(defaults={"steps": "x"}),
                            "field 'defaults.steps': steps must be a whole number from 1 to 1000, not 'x'"),
    "defaults-steps-huge": ("diffuse_studio.json", _set(defaults={"steps": 1e30}),
                            "field 'defaults.steps': steps must be a whole number from 1 to 1000, not 1e+30"),
    "defaults-guidance-nan": ("diffuse_studio.json", _set(defaults={"guidance_scale": math.nan}),
                              "field 'defaults.guidance_scale': the guidance scale must be a number from 0 to 50, not nan"),
    "defaults-seed-list": ("diffuse_studio.json", _set(defaults={"seed": [1]}),
                           "field 'defaults.seed': seed must be a single value, not [1]"),
    "preview-list": ("diffuse_studio.json", _set(preview_factors=[]), "field 'preview_factors' should be an object, not []"),
    "preview-bias-bool": ("diffuse_studio.json", _set_in("preview_factors", bias=[True, 0, 0]),
                          "field 'preview_factors' should be {\"matrix\": rows of 3 numbers, \"bias\": 3 numbers}"),
    "preview-matrix-nan": ("diffuse_studio.json", _set_in("preview_factors", matrix=[[math.nan, 0, 0]] * 4),
                           "field 'preview_factors' should be {\"matrix\": rows of 3 numbers, \"bias\": 3 numbers}"),
    "name-number": ("diffuse_studio.json", _set(name=5), "field 'name' should be text, not 5"),
    "vocabulary-text": ("diffuse_studio.json", _set(vocabulary="abc"), "field 'vocabulary' should be a list, not \"abc\""),
    "heads-list": ("classifier/config.json", _set(heads=[]), "field 'heads' should be an object, not []"),
    "heads-number": ("classifier/config.json", _set_in("heads", shape=5),
                     "field 'heads' should map each head to a list of labels; 'shape' does not"),
    "classifier-width-text": ("classifier/config.json", _set(width="x"),
                              "field 'width' should be a multiple of 8 from 8 to 1024, not \"x\""),
    "classifier-width-odd": ("classifier/config.json", _set(width=12),
                             "field 'width' should be a multiple of 8 from 8 to 1024, not 12"),
    "classifier-t-dim-odd": ("classifier/config.json", _set(t_dim=3),
                             "field 't_dim' should be an even whole number from 2 to 4096, not 3"),
    "classifier-channels": ("classifier/config.json", _set(in_channels=3),
                            "field 'in_channels' should be 4 (the model's latent channels), not 3"),
}


@pytest.fixture
def user_models(home):
    folder = home / "data" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def damaged(user_models, name: str):
    file, change, problem = CASES[name]
    folder = model_copy(user_models / name)
    edit_json(folder / file, change)
    return folder, file, problem


@pytest.mark.parametrize("name", sorted(CASES))
def test_models_lists_the_rest_and_names_the_file_and_field(name, user_models, capsys):
    folder, file, problem = damaged(user_models, name)
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    listed = listed_models(out)
    assert listed == ["shapes"]  # the built-in model, and not the damaged copy
    assert f"broken: {folder / file}: {problem}" in err.splitlines()


def test_text_encoder_config_is_checked_where_the_family_comes_from_it(user_models, capsys):
    folder = model_copy(user_models / "no-family")
    edit_json(folder / "diffuse_studio.json", lambda data: {k: v for k, v in data.items() if k != "family"})
    edit_json(folder / "text_encoder" / "config.json", _set(hidden_size=[]))
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert listed_models(out) == ["shapes"]
    assert (f"broken: {folder / 'text_encoder' / 'config.json'}: field 'hidden_size' should be a whole number "
            "from 1 to 65536, not []") in err.splitlines()


@pytest.mark.parametrize("name", ["scheduler-train-text", "defaults-steps-text", "classifier-width-odd", "unet-custom-code"])
def test_generate_with_a_damaged_folder_exits_2_with_the_file_and_field(name, user_models, tmp_path, capsys):
    folder, file, problem = damaged(user_models, name)
    code = main(["generate", "--model", str(folder), "--prompt", "a red circle", "--out", str(tmp_path / "out")])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {folder / file}: {problem}"]
    assert not (tmp_path / "out").exists()


def test_every_damaged_folder_at_once_in_a_real_process(user_models, home):
    for name in CASES:
        damaged(user_models, name)
    result = run_cli(["models"], home)
    err = no_traceback(result)
    assert result.returncode == 0
    assert listed_models(result.stdout.decode()) == ["shapes"]
    assert err.count("broken: ") == len(CASES)


def test_the_window_opens_with_every_damaged_folder(user_models, qtbot):
    from desktop_app.backend.local import LocalBackend
    from desktop_app.core.settings import Settings
    from desktop_app.gallery.library import Library
    from desktop_app.gui.window import MainWindow

    for name in CASES:
        damaged(user_models, name)
    settings = Settings(device="cpu", first_run_done=True)
    window = MainWindow(settings, LocalBackend(), Library(settings.output_path), start_engine=False)
    qtbot.addWidget(window)
    try:
        window.show()
        ids = [window.panel.model.itemData(k) for k in range(window.panel.model.count())]
        assert ids == ["shapes"]
        assert window.generate_button.isEnabled()
    finally:
        window.close()
