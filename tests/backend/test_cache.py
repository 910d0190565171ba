"""The model cache keeps several models within a memory budget; a folder model has no model hash."""

from __future__ import annotations

import shutil

import pytest

from desktop_app.backend.local.cache import CacheKey, MemoryBudget, ModelCache, estimate_bytes
from desktop_app.backend.local.device import choose
from desktop_app.backend.local.discovery import inspect_model
from desktop_app.backend.local.hashing import ModelHasher
from desktop_app.backend.local.loader import load_model


@pytest.fixture(scope="module")
def two_models(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    return [inspect_model(shutil.copytree(tiny_model, root / name)) for name in ("first", "second")]


def test_the_estimate_from_the_file_headers_is_what_a_loaded_model_weighs(two_models):
    info = two_models[0]
    loaded = load_model(info, choose("cpu", "fp32"))
    # within what the files do not hold: buffers a network makes itself (CLIP's position ids, 616 bytes)
    assert 0 <= loaded.weight_bytes() - estimate_bytes(info, 4) <= 1024
    assert estimate_bytes(info, 2) == estimate_bytes(info, 4) // 2  # fp16 halves it


def test_two_models_that_fit_stay_loaded_together(two_models):
    cpu = choose("cpu", "fp32")
    loads = []
    cache = ModelCache(MemoryBudget(ram=10 * 2**30, vram=0), loader=lambda *a, **k: loads.append(a[0].id) or load_model(*a, **k))
    first = cache.get(two_models[0], cpu)
    second = cache.get(two_models[1], cpu)
    assert cache.get(two_models[0], cpu) is first and cache.get(two_models[1], cpu) is second
    assert loads == ["first", "second"] and len(cache) == 2
    # the same model elsewhere (here: offloaded) is its own entry, not a reload of the first
    cache.get(two_models[0], cpu, low_vram=True)
    assert len(cache) == 3 and cache.keys()[-1] == CacheKey(str(two_models[0].path), (), "cpu", "fp32", True)


def test_a_model_that_does_not_fit_beside_the_others_evicts_the_least_recently_used(two_models):
    cpu = choose("cpu", "fp32")
    one = estimate_bytes(two_models[0], 4)
    cache = ModelCache(MemoryBudget(ram=int(one * 1.5), vram=0))  # room for one model, not two
    cache.get(two_models[0], cpu)
    cache.get(two_models[1], cpu)
    assert [k.path for k in cache.keys()] == [str(two_models[1].path)]


def test_a_folder_model_has_no_model_hash_and_nothing_is_hashed(two_models, home):
    """The A1111 "Model hash" is a checkpoint file's; a diffusers folder has none (the UNet-file hash
    this app wrote before matched nothing elsewhere). Files: tests/models/test_wiring.py."""
    info = two_models[0]
    told = []
    hasher = ModelHasher(lambda model, sha: told.append(model.id))
    hasher.request(info)
    hasher.wait(30)
    assert told == [] and hasher.known(info) == ""
