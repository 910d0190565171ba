from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.core.models import ModelInfo
from desktop_app.core.recipe import Recipe
from desktop_app.gallery import formats
from desktop_app.gallery import save as save_module
from desktop_app.gallery.a1111 import format_parameters, parse_parameters
from desktop_app.gallery.metadata import MetadataError, read_metadata, recipe_from_image_file
from desktop_app.gallery.save import DiskFullError, SaveError

from .conftest import make_request, save_image, tiny_image


def _model(tmp_path: Path) -> ModelInfo:
    folder = tmp_path / "my-model"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"weights" * 100)
    return ModelInfo(id="my-model", name="My Model", path=folder, family="SD 1.x", pipeline_class="StableDiffusionPipeline",
                     native_size=(512, 512), latent_factor=8, latent_channels=4, scheduler_config={})


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("index", [0, 2])
def test_round_trip_own_format(out_dir, tmp_path, index):
    model = _model(tmp_path)
    request = make_request(scheduler="DDIM", eta=0.3, classifier_target="red circle", classifier_scale=2.5, batch_size=3)
    path = save_image(tiny_image(), request, model=model, output_dir=out_dir, index_in_batch=index,
                      run={"device": "cpu", "precision": "fp32"}, model_hash="0123456789")
    assert path.parent.parent == out_dir and path.suffix == ".png"
    meta = read_metadata(path)
    assert meta.source == "diffuse-studio" and not meta.errors
    assert meta.recipe() == request.with_(seed=request.output.seed + index, batch_size=1)
    assert Recipe.from_flat(meta.info["batch_recipe"]) == request
    assert meta.info["batch_index"] == index and meta.info["format"] == formats.FORMAT_VERSION == 2
    assert meta.info["model"]["hash"] == "0123456789"
    assert meta.info["run"]["device"] == "cpu" and meta.info["versions"]["app"]
    chunk = json.loads(Image.open(path).info[formats.JSON_KEY])
    assert "preview" not in json.dumps(chunk["recipe"]) and chunk["recipe"]["sampling"]["eta"] == 0.3  # run options stay apart
    # The A1111 text alone restores every setting that changes the image, too.
    parsed = parse_parameters(Image.open(path).info["parameters"])
    assert not parsed.errors and not parsed.unknown
    own = meta.recipe().flat()
    for key, value in parsed.fields.items():
        assert own[key] == value, key


V1_PNG = Path(__file__).parents[1] / "data" / "v1-shapes-ddim-classifier-batch1.png"


def test_an_image_written_by_format_1_restores_exactly():
    """Made by the app before the recipe had parts: image 2 of a batch of 2, DDIM η 0.3, classifier guidance."""
    meta = read_metadata(V1_PNG)
    assert meta.source == "diffuse-studio" and meta.info["format"] == 1 and not meta.errors
    assert meta.recipe() == Recipe.of(
        "a green star on the right", negative_prompt="blurry", model_id="shapes", scheduler="DDIM", steps=12,
        guidance_scale=5.0, seed=4243, width=64, height=64, batch_size=1, eta=0.3, ddpm_variance="fixed_small",
        classifier_target="green star", classifier_scale=3.0)
    assert Recipe.from_flat(meta.info["batch_recipe"]).output.seed == 4242  # the batch's, image 2 is seed + 1
    assert meta.info["run"]["device"] == "cpu" and meta.unknown == {}  # format 1's preview settings are no recipe field


def test_a1111_text_is_in_the_documented_shape():
    request = make_request(prompt="cat, dog: friends", negative_prompt="", scheduler="DPM++ 2M Karras", guidance_scale=7.0)
    text = format_parameters(request, width=512, height=768, model_hash="6ce0161689", model_name="v1-5", version="v1")
    assert text.splitlines() == [
        "cat, dog: friends",
        "Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x768, "
        "Model hash: 6ce0161689, Model: v1-5, Version: v1",
    ]


def test_every_batch_image_has_its_own_seed_and_never_overwrites(out_dir):
    request = make_request(batch_size=4)
    paths = [save_image(tiny_image(), request, model=None, output_dir=out_dir, index_in_batch=k) for k in range(4)]
    paths.append(save_image(tiny_image(), request, model=None, output_dir=out_dir, index_in_batch=0))
    assert len(set(paths)) == 5
    assert [read_metadata(p).request["seed"] for p in paths] == [1234, 1235, 1236, 1237, 1234]


def test_images_from_a_server_keep_the_graph_it_ran(out_dir):
    from desktop_app.core.events import GeneratedImage
    from desktop_app.gallery.library import Library

    item = GeneratedImage(tiny_image(), make_request(), 0, extra_chunks={"prompt": '{"3": {"class_type": "KSampler"}}'})
    path = Library(out_dir).save(item).path
    chunks = Image.open(path).info
    assert chunks["prompt"] == '{"3": {"class_type": "KSampler"}}'  # ComfyUI can load the image again
    assert read_metadata(path).source == "diffuse-studio"  # and our own recipe is still what we read


def test_unicode_prompt_survives(out_dir):
    request = make_request(prompt="ein Kätzchen 🐱 — 猫\nzweite Zeile", negative_prompt="ñ")
    path = save_image(tiny_image(), request, model=None, output_dir=out_dir)
    assert recipe_from_image_file(path).prompt.text == request.prompt.text


def test_crash_during_write_leaves_no_file(out_dir, monkeypatch):
    def crash(fd):
        raise KeyboardInterrupt  # anything at all may stop a save half way

    monkeypatch.setattr(save_module.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        save_image(tiny_image(), make_request(), model=None, output_dir=out_dir)
    assert _files(out_dir) == []


def test_killed_process_leaves_only_a_hidden_temp_file_that_is_never_listed(out_dir, home):
    script = textwrap.dedent(f"""
        import os, signal
        from PIL import Image
        from desktop_app.gallery import save
        from desktop_app.gallery.library import Library
        from desktop_app.core.events import GeneratedImage
        from desktop_app.core.recipe import Recipe
        save.os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        Library(__import__("pathlib").Path({str(out_dir)!r})).save(
            GeneratedImage(Image.new("RGB", (32, 32)), Recipe.of("x", seed=1), 0))
    """)
    env = {**os.environ, "DIFFUSE_STUDIO_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(__file__).parents[2], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    files = _files(out_dir)
    assert all(f.name.startswith(save_module.TEMP_PREFIX) for f in files)
    from desktop_app.gallery.store import GalleryStore

    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
        assert store.count() == 0


def test_disk_full_raises_a_clear_error_and_leaves_nothing(out_dir, monkeypatch):
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data[:10]))  # part of the file reaches the disk, then it is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(save_module.os, "write", full)
    with pytest.raises(DiskFullError) as caught:
        save_image(tiny_image(), make_request(), model=None, output_dir=out_dir)
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    assert "full" in str(caught.value) and "Free some space" in str(caught.value)
    assert _files(out_dir) == []


def test_unwritable_output_folder_is_a_save_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SaveError, match="could not be saved"):
        save_image(tiny_image(), make_request(), model=None, output_dir=blocker)


# --- other tools' images -----------------------------------------------------------------------

def _png_with(tmp_path: Path, name: str, chunks: dict[str, str]) -> Path:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    path = tmp_path / name
    Image.new("RGB", (64, 48)).save(path, pnginfo=info)
    return path


A1111_TEXT = """masterpiece, a castle on a hill, (sunset:1.2)
Negative prompt: lowres, bad anatomy
second negative line
Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 3141592653, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Clip skip: 2, Lora hashes: "detail: a1b2c3, style: d4e5f6", Version: v1.10.1"""


def test_a1111_png(tmp_path):
    meta = read_metadata(_png_with(tmp_path, "a.png", {"parameters": A1111_TEXT}))
    assert meta.source == "a1111" and not meta.errors
    assert meta.request == {
        "prompt": "masterpiece, a castle on a hill, (sunset:1.2)", "negative_prompt": "lowres, bad anatomy\nsecond negative line",
        "steps": 30, "scheduler": "DPM++ 2M Karras", "guidance_scale": 7.5, "seed": 3141592653, "width": 512,
        "height": 768, "model_id": "v1-5-pruned-emaonly",
    }
    assert meta.unknown == {"Clip skip": "2"}
    # LoRA hashes are understood since the app runs LoRAs: kept with the image's facts, not "unknown"
    assert meta.info["Model hash"] == "6ce0161689" and meta.info["Lora hashes"] == "detail: a1b2c3, style: d4e5f6"


def test_old_a1111_fused_sampler_name(tmp_path):
    text = "a dog\nSteps: 20, Sampler: DPM++ 2M SDE Karras, CFG scale: 7, Seed: 1, Size: 512x512, Model: x"
    assert read_metadata(_png_with(tmp_path, "a.png", {"parameters": text})).request["scheduler"] == "DPM++ 2M SDE Karras"


def test_a1111_sampler_we_do_not_have_is_reported(tmp_path):
    text = "a dog\nSteps: 20, Sampler: DPM adaptive, CFG scale: 7, Seed: 1, Size: 512x512"
    meta = read_metadata(_png_with(tmp_path, "a.png", {"parameters": text}))
    assert "scheduler" not in meta.request and meta.unknown["Sampler"] == "DPM adaptive"
    assert recipe_from_image_file(tmp_path / "a.png").sampling.scheduler == Recipe.of("").sampling.scheduler


COMFY_GRAPH = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "dpmpp_2m",
                                              "scheduler": "karras", "denoise": 1, "model": ["10", 0],
                                              "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
    "10": {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1], "lora_name": "x.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "beautiful scenery, glass bottle", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}


def test_comfyui_png(tmp_path):
    path = _png_with(tmp_path, "c.png", {"prompt": json.dumps(COMFY_GRAPH), "workflow": "{}"})
    meta = read_metadata(path)
    assert meta.source == "comfyui" and not meta.errors
    assert meta.request == {
        "prompt": "beautiful scenery, glass bottle", "negative_prompt": "text, watermark", "seed": 156680208700286,
        "steps": 20, "guidance_scale": 8.0, "scheduler": "DPM++ 2M Karras", "width": 1024, "height": 768,
        "batch_size": 1, "model_id": "sd_xl_base_1.0",
    }


INVOKE = {
    "generation_mode": "txt2img", "positive_prompt": "a cozy cabin in the woods", "negative_prompt": "people",
    "width": 832, "height": 1216, "seed": 42, "rand_device": "cpu", "cfg_scale": 5.5, "steps": 28,
    "scheduler": "euler_a", "model": {"key": "abc", "hash": "blake3:ff", "name": "Juggernaut XL v9", "base": "sdxl", "type": "main"},
    "app_version": "5.0.0",
}


def test_invokeai_png(tmp_path):
    meta = read_metadata(_png_with(tmp_path, "i.png", {"invokeai_metadata": json.dumps(INVOKE), "invokeai_graph": "{}"}))
    assert meta.source == "invokeai" and not meta.errors
    assert meta.request == {
        "prompt": "a cozy cabin in the woods", "negative_prompt": "people", "seed": 42, "steps": 28,
        "guidance_scale": 5.5, "width": 832, "height": 1216, "scheduler": "Euler a", "model_id": "Juggernaut XL v9",
    }
    assert meta.unknown["generation_mode"] == "txt2img"


@pytest.mark.parametrize(
    "chunks",
    [
        {"diffuse_studio": "{not json"},
        {"diffuse_studio": json.dumps({"request": {"steps": 3}})},
        {"prompt": "[1, 2, 3]"},
        {"prompt": json.dumps({"1": {"class_type": "KSampler", "inputs": {"steps": "many", "positive": ["9", 0]}}})},
        {"invokeai_metadata": "null"},
        {"invokeai_metadata": json.dumps({"positive_prompt": "x", "seed": "abc", "model": 5})},
        {"parameters": "\x00\x01garbage"},
        {"parameters": "Steps: x, Sampler: ???, Size: big"},
        {},
    ],
)
def test_garbled_metadata_is_reported_never_raised(tmp_path, chunks):
    meta = read_metadata(_png_with(tmp_path, "g.png", chunks))
    if meta.source == "none":
        assert meta.errors
        with pytest.raises(MetadataError):
            recipe_from_image_file(tmp_path / "g.png")


def test_not_an_image_is_reported(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    meta = read_metadata(path)
    assert meta.source == "none" and "could not be read" in meta.errors[0]
    with pytest.raises(MetadataError, match="x.png"):
        recipe_from_image_file(path)


COMFY_CUSTOM = {
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox in the snow", "clip": ["11", 0]}},
    "12": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}},
    "13": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["25", 0], "guider": ["22", 0], "sampler": ["16", 0],
                                                            "sigmas": ["17", 0], "latent_image": ["27", 0]}},
    "16": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
    "17": {"class_type": "BasicScheduler", "inputs": {"scheduler": "simple", "steps": 28, "denoise": 1, "model": ["12", 0]}},
    "22": {"class_type": "BasicGuider", "inputs": {"model": ["12", 0], "conditioning": ["26", 0]}},
    "25": {"class_type": "RandomNoise", "inputs": {"noise_seed": 219670278747233}},
    "26": {"class_type": "FluxGuidance", "inputs": {"guidance": 3.5, "conditioning": ["6", 0]}},
    "27": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
}


def test_comfyui_custom_sampler_graph(tmp_path):
    meta = read_metadata(_png_with(tmp_path, "c.png", {"prompt": json.dumps(COMFY_CUSTOM)}))
    assert meta.source == "comfyui" and not meta.errors
    assert meta.request == {"prompt": "a fox in the snow", "guidance_scale": 1.0, "seed": 219670278747233, "steps": 28,
                            "scheduler": "Euler", "width": 1024, "height": 1024, "batch_size": 1, "model_id": "flux1-dev"}


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_a1111_jpeg_and_webp_user_comment(tmp_path, fmt, encoding):
    """As A1111 writes them (piexif: "UNICODE\\0" + UTF-16); some tools write little-endian."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + A1111_TEXT.encode(encoding)
    path = tmp_path / f"a.{fmt.lower()}"
    Image.new("RGB", (64, 48)).save(path, format=fmt, exif=exif.tobytes())
    meta = read_metadata(path)
    assert meta.source == "a1111" and meta.request["prompt"] == "masterpiece, a castle on a hill, (sunset:1.2)"
    assert meta.request["seed"] == 3141592653 and meta.request["scheduler"] == "DPM++ 2M Karras"


def test_foreign_model_names_map_to_local_models(tmp_path):
    from dataclasses import replace

    text = "a dog\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512, Model: My Model"
    path = _png_with(tmp_path, "a.png", {"parameters": text})
    local = _model(tmp_path)
    assert recipe_from_image_file(path, models=[local]).model.id == "my-model"  # by display name
    assert recipe_from_image_file(path, models=[replace(local, name="x")]).model.id == "My Model"  # kept
    assert recipe_from_image_file(path).model.id == "My Model"


def test_a1111_text_keeps_every_digit():
    request = make_request(guidance_scale=7.123456789, scheduler="DDIM", eta=0.333333333)
    text = format_parameters(request, width=32, height=32)
    parsed = parse_parameters(text)
    assert parsed.fields["guidance_scale"] == 7.123456789 and parsed.fields["eta"] == 0.333333333
    assert "CFG scale: 7.123456789," in text


def test_decompression_bomb_and_deep_json_are_reported(tmp_path, monkeypatch):
    path = _png_with(tmp_path, "deep.png", {"invokeai_metadata": "[" * 100_000 + "]" * 100_000})
    meta = read_metadata(path)
    assert meta.source == "none" and meta.errors
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # every image is a "bomb" now
    meta = read_metadata(path)
    assert meta.source == "none" and "could not be read" in meta.errors[0]
