"""The training recipe end to end at toy size: resumable stages and an atomic, loadable model folder."""

from __future__ import annotations

import json

import pytest

from desktop_app.builtin.train import main

pytestmark = pytest.mark.slow


def test_tiny_recipe_resumes_and_writes_a_loadable_model_folder(tmp_path):
    work, out = tmp_path / "work", tmp_path / "models" / "shapes"
    args = ["--recipe", "tiny", "--work-dir", str(work), "--out", str(out), "--threads", "1"]
    assert main([*args, "--stop-after", "vae"]) == 0
    assert (work / "vae.done.pt").exists() and not out.exists()

    out.mkdir(parents=True)
    (out / "README.md").write_text("model card\n")
    (out / "stale.bin").write_text("from an older model\n")
    assert main(args) == 0  # resumes after the VAE, then swaps the new folder in

    assert (out / "README.md").read_text() == "model card\n"
    assert not (out / "stale.bin").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    info = json.loads((out / "diffuse_studio.json").read_text())
    assert len(info["preview_factors"]["matrix"]) == 4 and len(info["preview_factors"]["bias"]) == 3

    from desktop_app.backend.local.engine import Engine
    from desktop_app.core.recipe import Recipe
    from tests.backend.helpers import CPU

    recipe = Recipe.of("a red circle", model_id=str(out), scheduler="DDIM", steps=2, seed=1, classifier_target="circle",
                       classifier_scale=1.0)
    result = Engine().run(recipe, CPU)
    assert result.images[0].size == (64, 64)
    scheduler = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == "v_prediction"


def test_a_time_limit_cuts_the_unet_stage_and_the_log_says_so(tmp_path):
    work, out = tmp_path / "work", tmp_path / "model"
    args = ["--recipe", "tiny", "--work-dir", str(work), "--out", str(out), "--threads", "1",
            "--set", "unet_steps=400", "--set", "unet_warmup=5", "--stop-after", "unet"]  # fmt: skip
    assert main([*args, "--unet-time-limit", "0.01"]) == 0
    lines = [json.loads(line) for line in (work / "train_log.jsonl").read_text().splitlines()]
    assert lines[0]["stage"] == "recipe" and lines[0]["unet_steps"] == 400
    assert any("cut to 21 steps" in line.get("note", "") for line in lines)
    import torch

    assert torch.load(work / "unet.ckpt.pt", weights_only=False)["step"] == 21


def test_init_from_a_model_folder_starts_every_part_from_its_weights(tmp_path):
    """With no steps to train, a fine-tune writes back exactly the model it started from."""
    from safetensors.torch import load_file

    source, copy = tmp_path / "source", tmp_path / "copy"
    common = ["--recipe", "tiny", "--threads", "1"]
    assert main([*common, "--work-dir", str(tmp_path / "w1"), "--out", str(source)]) == 0
    assert main([*common, "--work-dir", str(tmp_path / "w2"), "--out", str(copy), "--init-from", str(source),
                 "--set", "unet_steps=0", "--set", "classifier_steps=0"]) == 0  # fmt: skip

    for part, name in [("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"),
                       ("text_encoder", "model"), ("classifier", "model")]:  # fmt: skip
        a, b = load_file(source / part / f"{name}.safetensors"), load_file(copy / part / f"{name}.safetensors")
        assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a), part
    vae_config = (json.loads((d / "vae" / "config.json").read_text()) for d in (source, copy))
    assert next(vae_config)["scaling_factor"] == next(vae_config)["scaling_factor"]
    assert (source / "tokenizer" / "vocab.json").read_text() == (copy / "tokenizer" / "vocab.json").read_text()


def test_init_from_a_folder_that_is_not_a_model_says_so(tmp_path):
    with pytest.raises(SystemExit, match="not a model folder"):
        main(["--recipe", "tiny", "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path / "o"), "--init-from", str(tmp_path)])
