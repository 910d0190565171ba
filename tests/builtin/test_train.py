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

    from desktop_app.engine import Engine, GenerationRequest

    request = GenerationRequest(prompt="a red circle", model_id=str(out), scheduler="DDIM", steps=2, seed=1, preview="off",
                                classifier_target="circle", classifier_scale=1.0)  # fmt: skip
    result = Engine(device="cpu").run(request)
    assert result.images[0].size == (64, 64)
