"""The issue's "done when", through the app itself: ``diffuse-studio models`` lists a fake A1111 tree,
``generate --model <file> --prompt "(red:1.3) circle <lora:x:0.7>"`` works offline, and the engine
loads single files, switches LoRAs without reloading, refuses add-ons of another family by name,
asks once about an SD 2.x file's prediction type, and records the A1111 hashes. The socket guard
of this folder's conftest proves nothing is fetched."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

from desktop_app.cli.main import main
from desktop_app.core.recipe import AddOn, Recipe

from . import fixtures as fx


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def webui(models, tmp_path) -> Path:
    """A fake AUTOMATIC1111 tree: two checkpoints, a LoRA ``x``, a VAE, embeddings, broken files."""
    root = tmp_path / "stable-diffusion-webui"
    touch(root / "webui.py")
    (root / "modules").mkdir()
    checkpoints = root / "models" / "Stable-diffusion"
    checkpoints.mkdir(parents=True)
    shutil.copy(models.single_file("tiny-sd"), checkpoints / "mine.safetensors")
    shutil.copy(models.single_file("tiny-sdxl-mixed"), checkpoints / "xl.safetensors")
    shutil.copy(models.single_file("tiny-sdxl-refiner"), checkpoints / "refiner.safetensors")
    fx.write_truncated(models.single_file("tiny-sd"), checkpoints / "cut.safetensors")
    fx.write_html(checkpoints / "page.safetensors")
    fx.write_header_only(checkpoints / "flux.safetensors", {"double_blocks.0.img_attn.norm.key_norm.scale": ("F16", (4,))})
    loras = root / "models" / "Lora"
    loras.mkdir(parents=True)
    save_file(fx.kohya_lora(models.pipeline("tiny-sd")), str(loras / "x.safetensors"))
    save_file(fx.kohya_lora(models.pipeline("tiny-sd"), seed=5, alpha=4.0), str(loras / "y.safetensors"))
    save_file(fx.kohya_lora(models.pipeline("tiny-sdxl-mixed"), sgm=True), str(loras / "xl-style.safetensors"))
    (root / "models" / "VAE").mkdir(parents=True)
    fx.write_vae(models.folder("tiny-sd"), root / "models" / "VAE" / "soft.safetensors")
    (root / "embeddings").mkdir()
    fx.write_embedding(root / "embeddings" / "shiny.pt", (32,))
    fx.write_embedding(root / "embeddings" / "wide.safetensors", (64,))
    return root


def test_models_lists_a_fake_a1111_tree_by_kind_and_family_once_with_offline_roots(webui, tmp_path, capsys):
    comfy = tmp_path / "ComfyUI"
    touch(comfy / "main.py")
    (comfy / "comfy").mkdir()
    (comfy / "models" / "checkpoints").mkdir(parents=True)
    os.symlink(webui / "models" / "Stable-diffusion" / "mine.safetensors", comfy / "models" / "checkpoints" / "linked.safetensors")
    os.symlink(webui / "models" / "Lora", comfy / "models" / "loras")
    unplugged = tmp_path / "usb" / "ComfyUI"
    assert main(["models", "--root", str(webui), "--root", str(comfy), "--root", str(unplugged)]) == 0
    out, err = capsys.readouterr()
    sections = {}
    current = None
    for line in out.splitlines():
        if not line.startswith("  "):
            current = line
            sections[current] = []
        else:
            sections[current].append(line.split())
    models = {row[0]: row for row in sections["Models"]}
    assert models["mine"][1:3] == ["SD", "1.x"] and "file" in models["mine"]
    assert models["xl"][1] == "SDXL" and models["refiner"][1] == "SDXL" and "refiner" in models["refiner"]
    assert "linked" not in models  # the same file through ComfyUI's link: listed once
    loras = {row[0]: row for row in sections["LoRAs"]}
    assert set(loras) == {"x", "y", "xl-style"} and loras["xl-style"][1] == "SDXL"
    assert [row[0] for row in sections["VAEs"]] == ["soft"]
    assert {row[0] for row in sections["Embeddings"]} == {"shiny", "wide"}
    assert f"offline (not there now, kept in the settings): {unplugged}" in out
    broken = [line for line in err.splitlines() if line.startswith("broken: ")]
    assert len(broken) == 3 and all(len(line.splitlines()) == 1 for line in broken)
    by_file = {Path(line.split(": ")[1]).name: line for line in broken}
    assert "is truncated" in by_file["cut.safetensors"]
    assert "web page saved under a model's name" in by_file["page.safetensors"]
    assert "is FLUX, not a checkpoint Diffuse Studio can run" in by_file["flux.safetensors"]


def test_models_add_root_keeps_it_in_the_settings(webui, capsys):
    from desktop_app.core.settings import Settings

    assert main(["models", "--add-root", str(webui)]) == 0
    assert Settings.load().app_roots == [str(webui.resolve())]
    assert "  mine " in capsys.readouterr().out
    assert main(["models"]) == 0  # from the settings now
    assert "  mine " in capsys.readouterr().out


def _png(out: Path) -> tuple[str, dict]:
    (path,) = sorted(out.glob("*.png"))
    with Image.open(path) as image:
        return image.text["parameters"], json.loads(image.text["diffuse_studio"])


def test_generate_a_checkpoint_file_with_a_weighted_prompt_and_a_lora_tag_offline(webui, tmp_path, capsys):
    out = tmp_path / "out"
    prompt = "(red:1.3) circle <lora:x:0.7>"
    code = main(["generate", "--root", str(webui), "--model", str(webui / "models" / "Stable-diffusion" / "mine.safetensors"),
                 "--prompt", prompt, "--steps", "2", "--seed", "4", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    text, chunk = _png(out)
    assert text.splitlines()[0] == prompt  # the recipe keeps the tags as written
    assert 'Lora hashes: "x: ' in text and "Model: mine" in text
    assert chunk["recipe"]["prompt"]["text"] == prompt
    assert chunk["recipe"]["model"]["add_ons"] == [{"kind": "lora", "name": "x", "weight": 0.7}]
    lora = webui / "models" / "Lora" / "x.safetensors"
    from desktop_app.backend.local import hashes

    body = hashes.sha256_of(lora, hashes.body_start(lora))
    assert chunk["model"]["lora_hashes"] == {"x": body[:12]}


def test_errors_name_the_file_in_one_line(webui, models, tmp_path, capsys):
    checkpoints = webui / "models" / "Stable-diffusion"
    cases = {
        "cut.safetensors": "is truncated",
        "page.safetensors": "is a web page saved under a model's name",
        "flux.safetensors": "is FLUX, not a checkpoint",
        "refiner.safetensors": "is an SDXL refiner: it finishes pictures another model started",
    }
    for name, words in cases.items():
        code = main(["generate", "--model", str(checkpoints / name), "--prompt", "x", "--out", str(tmp_path)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert str(checkpoints / name) in err[0] and words in err[0], err[0]
    marker = tmp_path / "pwned"
    hostile = fx.write_pickle({"x": __import__("torch").zeros(1)}, tmp_path / "evil.ckpt", "hostile", marker)
    code = main(["generate", "--model", str(hostile), "--prompt", "x", "--out", str(tmp_path)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(err) == 1 and str(hostile) in err[0] and "would run code" in err[0]
    assert not marker.exists()
    code = main(["generate", "--root", str(webui), "--model", str(checkpoints / "mine.safetensors"), "--steps", "1",
                 "--prompt", "a <lora:xl-style:1>", "--out", str(tmp_path)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(err) == 1
    assert "xl-style.safetensors: is a LoRA for SDXL" in err[0] and "the model is SD 1.x" in err[0]
    assert not list(tmp_path.glob("*.png"))


def test_a_file_without_a_vae_needs_one_and_takes_a_vae_file(models, webui, tmp_path, capsys):
    bare = fx.write_single_file(models.folder("tiny-sd"), "SD 1.x", tmp_path / "bare.safetensors",
                                components=("unet", "text_encoder"))
    args = ["generate", "--root", str(webui), "--model", str(bare), "--prompt", "a circle", "--steps", "1",
            "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert f"{bare}: has no VAE inside; choose a VAE file for this model" in capsys.readouterr().err
    assert main([*args, "--vae", "soft"]) == 0, capsys.readouterr().err
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_an_sd2_file_that_does_not_say_is_asked_once_and_remembered(models, tmp_path, capsys):
    from desktop_app.core.model_choices import remembered_prediction

    sd2 = shutil.copy(models.single_file("tiny-sd2"), tmp_path / "sd2.safetensors")
    args = ["generate", "--model", str(sd2), "--prompt", "a circle", "--steps", "1", "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "does not say what it predicts" in err and "--prediction epsilon" in err
    assert main([*args, "--prediction", "v"]) == 0, capsys.readouterr().err
    assert remembered_prediction(sd2) == "v_prediction"
    assert main(args) == 0  # remembered
    capsys.readouterr()


# ---- the engine -------------------------------------------------------------------------------------------------


@pytest.fixture
def engine_on(webui):
    from desktop_app.backend.local.engine import Engine

    made = []

    def make(**kwargs):
        engine = Engine([], app_roots=[str(webui)], **kwargs)
        loads = []
        load = engine.cache._loader
        engine.cache._loader = lambda *a, **k: loads.append(a[0].id) or load(*a, **k)
        engine.loads = loads
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


def _pixels(result) -> np.ndarray:
    return np.asarray(result.images[0])


def test_a_file_model_makes_the_same_pixels_as_its_folder(engine_on, models):
    from tests.backend.helpers import CPU

    engine = engine_on()
    recipe = Recipe.of("a red circle", steps=2, seed=7, scheduler="Euler")
    from_file = engine.run(recipe.with_(model_id="mine"), CPU)
    from_folder = engine.run(recipe.with_(model_id=str(models.folder("tiny-sd"))), CPU)
    assert from_file.model.path.is_file() and from_file.recipe.output.width == 64
    assert np.array_equal(_pixels(from_file), _pixels(from_folder))


def test_switching_loras_never_reloads_the_checkpoint(engine_on):
    from tests.backend.helpers import CPU

    engine = engine_on()
    base = Recipe.of("a red circle", model_id="mine", steps=2, seed=3, scheduler="Euler")
    plain = engine.run(base, CPU)
    with_x = engine.run(base.with_(prompt="a red circle <lora:x:0.7>"), CPU)
    with_y = engine.run(base.with_(add_ons=[AddOn("lora", "y", 1.0)]), CPU)
    both = engine.run(base.with_(prompt="a red circle <lora:x:0.7> <lora:y:0.5>"), CPU)
    again = engine.run(base, CPU)
    assert engine.loads == ["mine"] and len(engine.cache) == 1
    images = [_pixels(r) for r in (plain, with_x, with_y, both)]
    assert all(not np.array_equal(a, b) for k, a in enumerate(images) for b in images[k + 1:])
    assert np.array_equal(_pixels(again), images[0])  # all LoRAs gone: the model computes as before
    assert with_x.recipe.prompt.text == "a red circle <lora:x:0.7>"
    assert with_x.recipe.model.add_ons == (AddOn("lora", "x", 0.7),) and set(with_x.lora_hashes) == {"x"}


def test_an_add_on_of_another_family_is_refused_by_name_before_anything_loads(engine_on, webui):
    from desktop_app.backend.local.job_add_ons import AddOnError
    from tests.backend.helpers import CPU

    engine = engine_on()
    with pytest.raises(AddOnError, match=r"xl-style\.safetensors: is a LoRA for SDXL"):
        engine.run(Recipe.of("a <lora:xl-style:1>", model_id="mine", steps=1), CPU)
    with pytest.raises(AddOnError, match=r"wide\.safetensors: is an embedding for"):
        engine.run(Recipe.of("a", model_id="mine", steps=1, add_ons=[AddOn("embedding", "wide")]), CPU)
    with pytest.raises(AddOnError, match=r"nothere: no LoRA of this name"):
        engine.run(Recipe.of("a <lora:nothere:1>", model_id="mine", steps=1), CPU)
    assert engine.loads == []


def test_embeddings_used_by_name_are_loaded_and_hashed_and_others_warned_about(engine_on):
    from tests.backend.helpers import CPU

    engine = engine_on()
    base = Recipe.of("a red circle", model_id="mine", steps=2, seed=3, scheduler="Euler")
    shiny = engine.run(base.with_(prompt="a shiny red circle, wide"), CPU)
    assert AddOn("embedding", "shiny") in shiny.recipe.model.add_ons and set(shiny.ti_hashes) == {"shiny"}
    assert any(w.startswith("wide was not used as an embedding") for w in shiny.warnings)
    word = engine.run(base.with_(prompt="a shiny red circle, wide", add_ons=[]), CPU)  # same again: same pixels
    assert np.array_equal(_pixels(shiny), _pixels(word))
    assert not np.array_equal(_pixels(shiny), _pixels(engine.run(base.with_(prompt="a red circle, wide"), CPU)))


def test_the_model_hash_of_a_file_is_computed_in_the_background_with_progress(models, tmp_path, home, monkeypatch):
    from desktop_app.backend.local import hashes, hashing
    from desktop_app.backend.local.catalog import file_model

    monkeypatch.setattr(hashes, "BLOCK", 64 * 1024)
    monkeypatch.setattr(hashing, "PROGRESS_EVERY", 0.0)
    path = shutil.copy(models.single_file("tiny-sd"), tmp_path / "hashed.safetensors")
    info = file_model(Path(path), "hashed")
    done, progress = [], []
    hasher = hashing.ModelHasher(lambda m, sha: done.append((m.id, sha)), lambda m, d, t: progress.append((d, t)))
    assert hasher.known(info) == ""
    hasher.request(info)
    hasher.wait(30)
    sha = hashes.sha256_of(path)
    assert done == [("hashed", sha)] and hasher.known(info) == sha[:10]
    assert len(progress) > 3 and progress[-1][1] == Path(path).stat().st_size
    assert hashing.ModelHasher().known(info) == sha[:10]  # cached on disk by path, size and mtime
    from desktop_app.backend.local.discovery import discover

    assert discover([str(tmp_path)]).hashes[str(Path(path))] == sha  # the catalog carries it for the window
