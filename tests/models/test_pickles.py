"""Pickled .ckpt/.pt/.bin files: loaded only by the weights-only unpickler with scoped stand-ins,
refused by name when they would run code, converted once to .safetensors in the cache."""

from __future__ import annotations

import os

import pytest
import torch

from desktop_app.backend.local import pickles
from desktop_app.core import paths
from desktop_app.core.models import ModelLoadError

from . import fixtures as fx

STATE = {"model.diffusion_model.out.2.weight": torch.arange(12.0).reshape(3, 4), "step": torch.tensor(3)}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_pickle_that_would_run_code_is_refused_by_name_and_runs_nothing(tmp_path, protocol):
    marker = tmp_path / "marker"
    path = fx.write_pickle(STATE, tmp_path / "evil.ckpt", "hostile", marker=marker, protocol=protocol)
    with pytest.raises(ModelLoadError) as caught:
        pickles.safe_load(path)
    assert str(caught.value) == (f"{path}: is a pickle that would run code when opened (it calls builtins.exec); "
                                 "it was not loaded; use a .safetensors version of this file")
    with pytest.raises(ModelLoadError):
        pickles.convert_to_safetensors(path)
    assert not marker.exists()


def test_lightning_style_checkpoint_loads_with_scoped_stand_ins(tmp_path):
    path = fx.write_pickle(STATE, tmp_path / "compvis.ckpt", "lightning")
    assert pickles.unsafe_globals(path) == []
    loaded = pickles.safe_load(path)
    assert torch.equal(loaded["state_dict"]["model.diffusion_model.out.2.weight"], STATE["model.diffusion_model.out.2.weight"])
    assert int(loaded["global_step"]) == 840000
    callback = next(iter(loaded["callbacks"].values()))
    assert isinstance(callback, pickles.LightningCallbackStandIn)
    after = [g[0] if isinstance(g, tuple) else g for g in torch.serialization.get_safe_globals()]
    assert pickles.LightningCallbackStandIn not in after  # the allowance was scoped to the load


def test_plain_pickle_and_legacy_format_load(tmp_path):
    plain = fx.write_pickle(STATE, tmp_path / "plain.pt")
    legacy = tmp_path / "legacy.bin"
    torch.save(STATE, legacy, _use_new_zipfile_serialization=False)
    assert torch.equal(pickles.tensors_of(pickles.safe_load(plain), plain)["step"], STATE["step"])
    assert torch.equal(pickles.tensors_of(pickles.safe_load(legacy), legacy)["step"], STATE["step"])


def test_conversion_is_once_into_the_cache_and_follows_changes(tmp_path):
    from safetensors.torch import load_file

    path = fx.write_pickle(STATE, tmp_path / "model.ckpt", "lightning")
    first = pickles.safetensors_copy(path)
    assert first.parent == paths.cache_dir() / "converted" and first.suffix == ".safetensors"
    assert {k: v.tolist() for k, v in load_file(first).items()} == {k: v.tolist() for k, v in STATE.items()}
    made = first.stat().st_mtime_ns
    assert pickles.safetensors_copy(path) == first and first.stat().st_mtime_ns == made
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert pickles.safetensors_copy(path) != first


def test_shared_storage_is_copied_apart(tmp_path):
    from safetensors.torch import load_file

    base = torch.arange(6.0)
    path = fx.write_pickle({"a": base, "b": base, "c": base[2:4]}, tmp_path / "shared.ckpt")
    out = load_file(pickles.convert_to_safetensors(path))
    assert out["a"].tolist() == out["b"].tolist() == list(range(6)) and out["c"].tolist() == [2.0, 3.0]


def test_truncated_and_html_pickles(tmp_path):
    good = fx.write_pickle(STATE, tmp_path / "good.ckpt")
    cut = fx.write_truncated(good, tmp_path / "cut.ckpt", 0.6)
    with pytest.raises(ModelLoadError) as caught:
        pickles.safe_load(cut)
    assert str(caught.value).startswith(f"{cut}: cannot be read as a PyTorch file (")
    assert str(caught.value).endswith("; it is truncated or damaged; download it again")
    legacy = tmp_path / "legacy.ckpt"
    torch.save(STATE, legacy, _use_new_zipfile_serialization=False)
    cut_legacy = fx.write_truncated(legacy, tmp_path / "cut-legacy.ckpt", 0.5)
    with pytest.raises(ModelLoadError) as caught:
        pickles.safe_load(cut_legacy)
    assert str(caught.value) == (f"{cut_legacy}: cannot be read as a PyTorch file (it ends too early); "
                                 "it is truncated or damaged; download it again")
    page = fx.write_html(tmp_path / "page.ckpt")
    with pytest.raises(ModelLoadError) as caught:
        pickles.safetensors_copy(page)
    assert str(caught.value) == (f"{page}: is a web page saved under a model's name, not a model; "
                                 "download the file itself again")
