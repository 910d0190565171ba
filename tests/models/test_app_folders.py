"""Other apps' folders, in place and read-only: fake AUTOMATIC1111, Forge, ComfyUI, InvokeAI and
Hugging Face cache trees, listed by kind and family, deduplicated, offline roots kept."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from desktop_app.backend.local import app_folders as af

from . import fixtures as fx

LORA_HEADER = {"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": ("F16", (4, 768))}


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def trees(models, tmp_path) -> dict[str, Path]:
    a1111 = tmp_path / "stable-diffusion-webui"
    touch(a1111 / "webui.py")
    (a1111 / "modules").mkdir()
    checkpoints = a1111 / "models" / "Stable-diffusion"
    checkpoints.mkdir(parents=True)
    shutil.copy(models.single_file("tiny-sd"), checkpoints / "tiny.safetensors")
    (checkpoints / "xl").mkdir()
    shutil.copy(models.single_file("tiny-sdxl-mixed"), checkpoints / "xl" / "tiny-xl.safetensors")
    shutil.copy(models.single_file("tiny-sd", "tiny-sd-inpaint", unet={"in_channels": 9}), checkpoints / "inpaint.safetensors")
    fx.write_truncated(models.single_file("tiny-sd"), checkpoints / "cut.safetensors")
    fx.write_html(checkpoints / "page.safetensors")
    touch(checkpoints / "notes.txt", "not a model")
    fx.write_pickle({"x": __import__("torch").zeros(1)}, checkpoints / "old.ckpt")
    fx.write_header_only(checkpoints / "flux.safetensors", {"double_blocks.0.img_attn.norm.key_norm.scale": ("F16", (4,))})
    fx.write_vae(models.folder("tiny-sd"), touch(a1111 / "models" / "VAE" / "sdxl_vae.safetensors"))
    fx.write_header_only(touch(a1111 / "models" / "Lora" / "style.safetensors"), LORA_HEADER)
    fx.write_header_only(touch(a1111 / "models" / "LyCORIS" / "hada.safetensors"),
                         {"lora_unet_x_attn2_to_k.hada_w1_a": ("F16", (4, 768))})
    fx.write_header_only(touch(a1111 / "embeddings" / "shiny.safetensors"), {"emb_params": ("F32", (2, 768))})
    fx.write_header_only(touch(a1111 / "embeddings" / "xl.safetensors"),
                         {"clip_l": ("F32", (2, 768)), "clip_g": ("F32", (2, 1280))})

    comfy = tmp_path / "ComfyUI"
    touch(comfy / "main.py")
    (comfy / "comfy").mkdir()
    (comfy / "models" / "checkpoints").mkdir(parents=True)
    os.symlink(checkpoints / "tiny.safetensors", comfy / "models" / "checkpoints" / "linked.safetensors")
    os.link(a1111 / "models" / "Lora" / "style.safetensors", touch(comfy / "models" / "x").parent / "hard.safetensors")
    (comfy / "models" / "x").unlink()
    os.symlink(a1111 / "models" / "Lora", comfy / "models" / "loras")
    shutil.copytree(models.folder("tiny-sd"), comfy / "models" / "diffusers" / "tiny-folder")
    shared = tmp_path / "shared"
    fx.write_header_only(touch(shared / "ckpts" / "refiner-like.safetensors"), {"x": ("F32", (1,))})
    shutil.copy(models.single_file("tiny-sdxl-refiner"), shared / "ckpts" / "refiner.safetensors")
    fx.write_header_only(touch(shared / "emb" / "far.safetensors"), {"emb_params": ("F32", (1, 1024))})
    touch(comfy / "extra_model_paths.yaml", "other:\n  base_path: ../shared\n  checkpoints: |\n    ckpts\n    missing\n"
                                            "  embeddings: emb\n  upscale_models: up\n")

    invoke = tmp_path / "invokeai"
    touch(invoke / "invokeai.yaml", "schema_version: 4.0.2\nmodels_dir: mine\n")
    shutil.copy(models.single_file("tiny-sdxl-mixed"), touch(invoke / "mine" / "sdxl" / "main" / "m.safetensors"))
    fx.write_header_only(touch(invoke / "mine" / "sd-1" / "lora" / "l.safetensors"), LORA_HEADER)
    (invoke / "databases").mkdir()
    with sqlite3.connect(invoke / "databases" / "invokeai.db") as db:
        db.execute("CREATE TABLE models (id TEXT PRIMARY KEY, config TEXT)")
        for n, (path, base, kind) in enumerate([("sdxl/main/m.safetensors", "sdxl", "main"),
                                               ("sd-1/lora/l.safetensors", "sd-1", "lora"),
                                               ("sd-1/gone.safetensors", "sd-1", "main"),
                                               ("x.onnx", "sd-1", "onnx")]):
            db.execute("INSERT INTO models VALUES (?, ?)",
                       (str(n), json.dumps({"path": path, "base": base, "type": kind, "hash": "blake3:abc"})))
    db.close()

    hub = tmp_path / "hf" / "hub"
    snap = hub / "models--someone--tiny" / "snapshots" / "rev1"
    shutil.copytree(models.folder("tiny-sd2"), snap)
    touch(hub / "models--someone--tiny" / "refs" / "main", "rev1")
    touch(hub / "models--someone--text" / "snapshots" / "r" / "config.json", "{}")
    return {"a1111": a1111, "comfy": comfy, "invoke": invoke, "hub": hub, "root": tmp_path}


def by_name(listing: af.Listing) -> dict[str, af.FoundModel]:
    return {m.path.name: m for m in listing.models}


def test_apps_are_recognised(trees, tmp_path):
    assert af.detect_app(trees["a1111"]) == "AUTOMATIC1111"
    (trees["a1111"] / "modules_forge").mkdir()
    assert af.detect_app(trees["a1111"]) == "Forge"
    assert af.detect_app(trees["comfy"]) == "ComfyUI"
    assert af.detect_app(trees["invoke"]) == "InvokeAI"
    assert af.detect_app(trees["hub"]) == "Hugging Face cache"
    assert af.detect_app(tmp_path / "nothing") is None


def test_a1111_tree_listed_by_kind_and_family(trees):
    found = by_name(af.scan_roots([af.AppRoot("AUTOMATIC1111", trees["a1111"])]))
    assert (found["tiny.safetensors"].kind, found["tiny.safetensors"].family, found["tiny.safetensors"].variant) == (
        "checkpoint", "SD 1.x", "txt2img")
    assert (found["tiny-xl.safetensors"].family, found["inpaint.safetensors"].variant) == ("SDXL", "inpaint")
    assert found["cut.safetensors"].error.startswith("is truncated: ")
    assert found["page.safetensors"].error == ("is a web page saved under a model's name, not a model; "
                                               "download the file itself again")
    assert (found["old.ckpt"].kind, found["old.ckpt"].variant, found["old.ckpt"].family) == ("checkpoint", "pickle", None)
    assert found["flux.safetensors"].error.startswith("is FLUX, not a checkpoint")
    assert "notes.txt" not in found
    assert (found["sdxl_vae.safetensors"].kind, found["sdxl_vae.safetensors"].family) == ("vae", "SDXL")
    assert (found["style.safetensors"].kind, found["style.safetensors"].family) == ("lora", "SD 1.x")
    assert found["hada.safetensors"].variant == "loha"
    assert (found["shiny.safetensors"].kind, found["shiny.safetensors"].family) == ("embedding", "SD 1.x")
    assert found["xl.safetensors"].family == "SDXL"


def test_comfyui_with_extra_paths_and_duplicates_shown_once(trees):
    roots = [af.AppRoot("AUTOMATIC1111", trees["a1111"]), af.AppRoot("ComfyUI", trees["comfy"])]
    listing = af.scan_roots(roots)
    found = by_name(listing)
    assert "linked.safetensors" not in found and "hard.safetensors" not in found  # same inode as A1111's
    assert found["tiny.safetensors"].sources == (f"AUTOMATIC1111 {trees['a1111']}", f"ComfyUI {trees['comfy']}")
    assert len(found["style.safetensors"].sources) == 2
    assert (found["tiny-folder"].kind, found["tiny-folder"].family) == ("diffusers", "SD 1.x")
    assert (found["refiner.safetensors"].family, found["refiner.safetensors"].variant) == ("SDXL", "refiner")
    assert found["refiner-like.safetensors"].kind == "unsupported"
    assert (found["far.safetensors"].kind, found["far.safetensors"].family) == ("embedding", "SD 2.x")
    paths = [m.path for m in listing.models]
    assert len(paths) == len({os.path.realpath(p) for p in paths})


def test_comfy_yaml_expands_home_and_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELS_AT", str(tmp_path / "disk"))
    yaml_file = touch(tmp_path / "c" / "extra_model_paths.yaml",
                      "a:\n  base_path: ~/ai\n  loras: loras\n  is_default: true\n"
                      "b:\n  base_path: $MODELS_AT\n  checkpoints: |\n    one\n    /abs/two\n")
    assert af.comfy_extra_paths(yaml_file) == {"lora": [tmp_path / "home" / "ai" / "loras"],
                                               "checkpoint": [tmp_path / "disk" / "one", Path("/abs/two")]}


def test_invokeai_database_read_only(trees):
    before = snapshot(trees["invoke"])
    found = by_name(af.scan_roots([af.AppRoot("InvokeAI", trees["invoke"])]))
    assert (found["m.safetensors"].kind, found["m.safetensors"].family) == ("checkpoint", "SDXL")
    assert (found["l.safetensors"].kind, found["l.safetensors"].family) == ("lora", "SD 1.x")
    assert "gone.safetensors" not in found and "x.onnx" not in found
    records = af.invokeai_records(trees["invoke"])
    assert records[0][3] == "abc"
    assert snapshot(trees["invoke"]) == before  # no journal, no change


def test_hf_cache_lists_diffusers_snapshots(trees):
    found = by_name(af.scan_roots([af.AppRoot("Hugging Face cache", trees["hub"])]))
    assert list(found) == ["rev1"] and (found["rev1"].kind, found["rev1"].family) == ("diffusers", "SD 2.x")
    assert af.hf_cache_dir({"HF_HOME": "/x"}) == Path("/x/hub")
    assert af.hf_cache_dir({"HF_HUB_CACHE": "/y"}) == Path("/y")
    assert af.hf_cache_dir({}, home=Path("/h")) == Path("/h/.cache/huggingface/hub")


def test_an_unplugged_root_is_offline_not_forgotten(trees, tmp_path):
    gone = af.AppRoot("ComfyUI", tmp_path / "usb" / "ComfyUI")
    listing = af.scan_roots([gone, af.AppRoot("AUTOMATIC1111", trees["a1111"])])
    assert listing.offline == [gone] and listing.of_kind("checkpoint")


def test_first_start_offers_the_usual_places_that_exist(trees):
    home = trees["root"]
    env = {"HF_HOME": str(home / "hf"), "INVOKEAI_ROOT": str(trees["invoke"])}
    found = af.candidate_roots(env, home)
    assert [(r.app, r.path) for r in found] == [
        ("InvokeAI", trees["invoke"]), ("AUTOMATIC1111", trees["a1111"]), ("ComfyUI", trees["comfy"]),
        ("Hugging Face cache", trees["hub"])]
    assert af.candidate_roots({}, home / "empty") == []


def test_scanning_writes_nothing(trees):
    before = {k: snapshot(trees[k]) for k in ("a1111", "comfy", "hub")}
    af.scan_roots([af.AppRoot("AUTOMATIC1111", trees["a1111"]), af.AppRoot("ComfyUI", trees["comfy"]),
                   af.AppRoot("Hugging Face cache", trees["hub"])])
    assert {k: snapshot(trees[k]) for k in before} == before
