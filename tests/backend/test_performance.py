"""Fast mode, VAE tiling and low-VRAM mode on the CPU (the CUDA side is in test_gpu.py).

Fast mode compiles with the "aot_eager" backend here: the same torch.compile path (Dynamo
tracing, AOT autograd, fused QKV, channels_last) without inductor's C++ build, which takes about
a minute on a small CPU. The inductor cache test runs inductor for real, in subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from desktop_app.backend.local.engine import Engine
from desktop_app.backend.local.performance import CompileSettings, wants_tiling
from tests.backend.helpers import options
from tests.backend.helpers import recipe as request

LATENT = options(preview="latent")


def pixels(result) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.int16) for image in result.images])


UNTILED = options(preview="latent", vae_tiling="off")
FAST = options(preview="latent", fast=True)


@pytest.fixture(scope="module")
def untiled_engine():
    made = Engine()
    yield made
    made.close()


def fast_engine(backend="eager") -> Engine:
    return Engine(compile=CompileSettings(backend=backend, devices=("cpu",)))


def run_with_phases(engine, req, run_options=FAST):
    phases = []
    result = engine.run(req, run_options, on_step=lambda update: phases.append((update.step, update.phase)))
    return result, phases


def test_fast_mode_warms_up_once_per_shape_and_draws_the_same_picture(engine, tiny_model):
    normal = pixels(engine.run(request(tiny_model), LATENT))
    fast = fast_engine()
    first, phases = run_with_phases(fast, request(tiny_model))
    assert phases[0] == (0, "warm-up")  # announced before the compiling call
    assert [p for _, p in phases[1:]] == ["denoise"] * 4
    assert first.timings["warm-up"] > 0 and first.notes == []
    assert fast.load(str(tiny_model), FAST).fast is not None
    assert np.abs(pixels(first) - normal).max() <= 2  # fused projections reorder float sums

    again, phases = run_with_phases(fast, request(tiny_model, seed=7))
    assert "warm-up" not in [p for _, p in phases] and "warm-up" not in again.timings
    bigger, phases = run_with_phases(fast, request(tiny_model, width=96))
    assert phases[0] == (0, "warm-up")  # static shapes: a new size compiles again
    assert bigger.images[0].size == (96, 64)


def test_a_failing_compiler_falls_back_to_the_normal_path_with_a_message(engine, tiny_model):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler on this machine")

    normal = pixels(engine.run(request(tiny_model), LATENT))
    fast = fast_engine(broken_backend)
    result = fast.run(request(tiny_model), FAST)
    assert len(result.notes) == 1
    assert "fast mode is off" in result.notes[0] and "no C++ compiler" in result.notes[0]
    assert np.array_equal(pixels(result), normal)  # the QKV fusion and channels_last were undone
    assert fast.load(str(tiny_model), FAST).fast is None
    assert fast.run(request(tiny_model), FAST).notes == []  # said once; the model stays on the normal path


def test_fast_mode_stays_off_where_it_does_not_apply(tiny_model):
    engine = Engine()  # fast mode applies on CUDA only unless the engine is told otherwise
    _, phases = run_with_phases(engine, request(tiny_model))
    assert engine.load(str(tiny_model), FAST).fast is None and "warm-up" not in [p for _, p in phases]


@pytest.mark.parametrize(("setting", "size", "tiled"), [("auto", 64, False), ("auto", 128, True), ("off", 128, False),
                                                        ("on", 128, True)])
def test_vae_tiling_for_large_images(untiled_engine, tiny_model, setting, size, tiled):
    assert wants_tiling(setting, False, (size, size), (64, 64)) == tiled
    untiled = pixels(untiled_engine.run(request(tiny_model, width=size, height=size), UNTILED))
    other = Engine()
    result = other.run(request(tiny_model, width=size, height=size), options(preview="latent", vae_tiling=setting))
    assert any("decoded in tiles" in note for note in result.notes) == tiled
    difference = np.abs(pixels(result) - untiled)
    if tiled:  # blended tiles: not bit-equal, but the same picture
        assert 0 < difference.mean() < 8
    else:
        assert difference.max() == 0
    assert other.load(str(tiny_model), LATENT).pipe.vae.use_tiling is False  # switched on for that image only


def test_low_vram_mode_on_the_cpu_tiles_and_slices_the_decode(untiled_engine, tiny_model):
    low = Engine()
    low_vram = options(preview="latent", low_vram=True)
    result = low.run(request(tiny_model, batch_size=2, width=128, height=128), low_vram)
    vae = low.load(str(tiny_model), low_vram).pipe.vae
    assert vae.use_tiling and vae.use_slicing
    assert result.notes == []  # the user chose it: nothing to explain
    normal = pixels(untiled_engine.run(request(tiny_model, batch_size=2, width=128, height=128), UNTILED))
    assert 0 < np.abs(pixels(result) - normal).mean() < 8


def test_unknown_tiling_setting_is_refused(engine, tiny_model):
    from desktop_app.backend.local.generate import InvalidRequest

    with pytest.raises(InvalidRequest, match="vae tiling must be one of auto, on, off"):
        engine.run(request(tiny_model), options(vae_tiling="sometimes"))


_INDUCTOR_RUN = textwrap.dedent("""
    import json, sys
    from desktop_app.backend.local.engine import Engine  # first: before torch puts its own cache folder in the env
    from torch._dynamo.utils import counters
    from desktop_app.backend.local.performance import CompileSettings
    from desktop_app.core.options import RunOptions
    from desktop_app.core.recipe import Recipe
    engine = Engine(compile=CompileSettings(devices=("cpu",)))
    recipe = Recipe.of("a cat", model_id=sys.argv[1], steps=2, seed=1)
    result = engine.run(recipe, RunOptions(device="cpu", preview="off", fast=True))
    print(json.dumps({"notes": result.notes, "hits": counters["inductor"]["fxgraph_cache_hit"],
                      "misses": counters["inductor"]["fxgraph_cache_miss"]}))
""")


@pytest.mark.slow
def test_inductor_cache_lives_in_the_app_cache_and_serves_the_next_launch(home, tiny_model):
    """The first launch compiles (cache misses) into the app's cache folder; the next one hits it."""
    env = {**os.environ, "DIFFUSE_STUDIO_HOME": str(home)}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _INDUCTOR_RUN, str(tiny_model)], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert runs[0]["notes"] == [] and runs[0]["misses"] > 0
    assert runs[1]["hits"] > 0 and runs[1]["misses"] == 0
    cache = home / "cache" / "compile" / "inductor"
    assert cache.is_dir() and any(cache.rglob("*.py"))
