"""Model discovery and loading: broken folders give a ModelLoadError naming the file."""

from __future__ import annotations

import json
import shutil

import pytest

from desktop_app.backend.local.discovery import discover, inspect_model, resolve_model
from desktop_app.core.models import ModelLoadError
from tests.backend.helpers import CPU, recipe


def test_tiny_model_is_described(tiny_model):
    info = inspect_model(tiny_model)
    assert info.name == "Tiny test model"
    assert info.family == "custom"
    assert info.native_size == (64, 64)
    assert info.latent_factor == 2
    assert info.preview_factors is not None


def test_family_from_text_encoder_width(tiny_copy):
    config = tiny_copy / "text_encoder" / "config.json"
    data = json.loads(config.read_text())
    data["hidden_size"] = 768
    config.write_text(json.dumps(data))
    (tiny_copy / "diffuse_studio.json").unlink()
    assert inspect_model(tiny_copy).family == "SD 1.x"


def test_discovery_finds_user_models(home, tiny_model):
    target = home / "data" / "models" / "mine"
    shutil.copytree(tiny_model, target)
    found = discover()
    assert "mine" in [m.id for m in found.models]
    assert resolve_model("mine").path == target.resolve()


def _break(folder, how):
    if how == "no index":
        (folder / "model_index.json").unlink()
        return folder / "model_index.json", "model_index.json is missing"
    if how == "garbage index":
        (folder / "model_index.json").write_text("{ this is not json")
        return folder / "model_index.json", "not valid JSON"
    if how == "missing component":
        shutil.rmtree(folder / "vae")
        return folder / "vae", "'vae' named in model_index.json is missing"
    if how == "truncated weights":
        weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        return weights, "truncated"
    if how == "garbage weights":
        weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
        weights.write_bytes(b"\x00\x01not a tensor file" * 10)
        return weights, "corrupt header"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["no index", "garbage index", "missing component", "truncated weights", "garbage weights"])
def test_broken_folder_names_the_file_and_the_problem(tiny_copy, how):
    path, words = _break(tiny_copy, how)
    with pytest.raises(ModelLoadError) as caught:
        inspect_model(tiny_copy)
    assert caught.value.path == path
    assert words in str(caught.value)


def test_a_broken_model_never_hides_the_others(home, tiny_model):
    models = home / "data" / "models"
    shutil.copytree(tiny_model, models / "good")
    shutil.copytree(tiny_model, models / "bad")
    _break(models / "bad", "truncated weights")
    (models / "holiday photos").mkdir()  # an unrelated folder is neither a model nor an error
    found = discover()
    mine = [m.id for m in found.models if m.path.is_relative_to(models)]
    assert mine == ["good"]
    assert "shapes" in [m.id for m in found.models]  # the shipped model stays listed beside them
    assert [e.path.parts[-3] for e in found.errors] == ["bad"]


def test_loading_a_model_damaged_after_discovery_fails_cleanly(engine, tiny_copy):
    info = inspect_model(tiny_copy)
    _break(tiny_copy, "truncated weights")
    with pytest.raises(ModelLoadError, match="truncated"):
        engine.run(recipe(info.path, "a cat", steps=2, seed=1), CPU)


def test_unknown_model_id_lists_the_known_ones(home, tiny_model):
    shutil.copytree(tiny_model, home / "data" / "models" / "known")
    with pytest.raises(ModelLoadError, match="known models: .*known"):
        resolve_model("nonexistent")
