"""Other tools' images: a hand-made file carrying exactly what each tool writes, and the real files
those tools wrote (``../shared/interop/foreign/``, read from there, never copied into the repo).

Every reading ends in ``Recipe.from_flat``: the fields must make a recipe whose only problems are
the ones a foreign image must have (its model is not here; a seed beyond this app's range).
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from desktop_app.core.recipe import MAX_SEED, Recipe
from desktop_app.gallery import metadata as metadata_module
from desktop_app.gallery import stealth
from desktop_app.gallery.metadata import read_metadata
from desktop_app.gallery.readers.samplers import from_comfy, from_invoke_legacy, from_novelai

FOREIGN = Path(__file__).resolve().parents[2].parent / "shared" / "interop" / "foreign"


def real(name: str) -> Path:
    path = FOREIGN / name
    if not FOREIGN.is_dir():
        pytest.skip(f"the other tools' images are not here ({FOREIGN})")
    assert path.is_file(), f"{path} is missing"
    return path


def png_with(tmp_path: Path, chunks: dict[str, str | bytes], size=(64, 48), mode="RGB", name="x.png") -> Path:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    path = tmp_path / name
    Image.new(mode, size, "gray").save(path, pnginfo=info)
    return path


def assert_recipe(meta, *, allowed: tuple[str, ...] = ("model.id",)) -> Recipe:
    """The reading becomes a recipe with the same values, and nothing else is wrong with it."""
    assert meta.ok, meta.errors
    recipe = Recipe.from_flat(meta.request)
    flat = recipe.flat()
    for key, value in meta.request.items():
        assert flat[key] == value, key
    problems = {p.field for p in recipe.validate(None)}
    assert problems == set(allowed), recipe.validate(None)
    return recipe


def settings(meta) -> tuple:
    r = meta.request
    return (
        r.get("prompt"),
        r.get("negative_prompt"),
        r.get("seed"),
        r.get("steps"),
        r.get("guidance_scale"),
        r.get("scheduler"),
        r.get("width"),
        r.get("height"),
    )


# ---- sampler names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "name", "schedule", "ours"),
    [
        ("comfy", "dpmpp_2m", "karras", "DPM++ 2M Karras"),
        ("comfy", "dpmpp_2m", "normal", "DPM++ 2M"),
        ("comfy", "euler_ancestral", "normal", "Euler a"),
        ("comfy", "uni_pc_bh2", "normal", "UniPC"),
        ("comfy", "sample_dpmpp_sde", "simple", "DPM++ SDE"),  # ComfyUI before mid-2023
        ("comfy", "dpmpp_2m_sde_gpu", "karras", "DPM++ 2M SDE Karras"),  # Fooocus
        ("comfy", "euler_cfg_pp", "normal", None),
        ("comfy", "dpmpp_3m_sde", "karras", None),
        ("novelai", "k_euler_ancestral", "native", "Euler a"),
        ("novelai", "k_dpmpp_2m", "karras", "DPM++ 2M Karras"),
        ("novelai", "k_dpmpp_2s_ancestral", "native", None),
        ("invoke", "k_lms", "", "LMS"),
        ("invoke", "k_euler_a", "", "Euler a"),
        ("invoke", "k_dpmpp_2", "", "DPM++ 2M"),
        ("invoke", "plms", "", "PNDM"),
    ],
)
def test_sampler_names_map_to_ours(tool, name, schedule, ours):
    match = {
        "comfy": lambda: from_comfy(name, schedule),
        "novelai": lambda: from_novelai(name, schedule),
        "invoke": lambda: from_invoke_legacy(name),
    }[tool]()
    assert match.name == ours
    if ours is None:
        assert "no equivalent" in match.notes["sampler"]


def test_schedules_we_lack_are_noted():
    assert "exponential" in from_comfy("euler", "exponential").notes["schedule"]
    assert "no Karras variant" in from_comfy("euler", "karras").notes["schedule"]
    assert from_comfy("dpmpp_2m", "karras").notes == {}


# ---- AUTOMATIC1111: PNG, JPEG/WebP EXIF, stealth -------------------------------------------------

A1111 = (
    "a castle on a hill, (sunset:1.2)\nNegative prompt: lowres\n"
    "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, "
    "CFG scale: 7.5, Seed: 3141592653, Size: 512x768, Model hash: 6ce0161689, Model: v1-5, Clip skip: 2"
)
A1111_SETTINGS = (
    "a castle on a hill, (sunset:1.2)",
    "lowres",
    3141592653,
    30,
    7.5,
    "DPM++ 2M Karras",
    512,
    768,
)


def test_real_a1111_png_and_jpeg():
    for name in ("AUTOMATIC1111__automatic1111_cropped.png", "AUTOMATIC1111__automatic1111_cropped.jpg"):
        meta = read_metadata(real(name))
        assert meta.source == "a1111" and not meta.errors
        assert settings(meta) == ("photo of a duck", "monochrome", 235284042, 15, 5.0, "UniPC", 512, 400)
        assert meta.request["model_id"] == "realistic_realisticVisionV20_v20"
        assert_recipe(meta)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize(
    "comment",
    [
        b"UNICODE\x00" + A1111.encode("utf-16-be"),  # A1111 (piexif)
        b"UNICODE\x00\xff\xfe" + A1111.encode("utf-16-le"),  # with a byte-order mark
        b"UNICODE\x00" + A1111.encode("utf-8"),  # UTF-8 under a UNICODE header
        b"ASCII\x00\x00\x00" + A1111.encode("ascii"),
        A1111.encode("utf-8"),  # no character-code header at all
    ],
)
def test_a1111_exif_user_comment_in_every_encoding(tmp_path, fmt, comment):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = comment
    path = tmp_path / f"a.{fmt.lower()}"
    Image.new("RGB", (64, 48)).save(path, format=fmt, exif=exif.tobytes())
    meta = read_metadata(path)
    assert meta.source == "a1111" and settings(meta) == A1111_SETTINGS
    assert_recipe(meta)


def test_a1111_text_in_ifd0_or_a_jpeg_comment(tmp_path):
    exif = Image.Exif()
    exif[0x9286] = b"UNICODE\x00" + A1111.encode("utf-16-be")  # IFD0, where some tools put it
    Image.new("RGB", (8, 8)).save(tmp_path / "ifd0.jpg", exif=exif.tobytes())
    Image.new("RGB", (8, 8)).save(tmp_path / "com.jpg", comment=A1111.encode())
    Image.new("RGB", (8, 8)).save(tmp_path / "gimp.jpg", comment=b"Created with GIMP")
    for name in ("ifd0.jpg", "com.jpg"):
        assert settings(read_metadata(tmp_path / name)) == A1111_SETTINGS, name
    assert read_metadata(tmp_path / "gimp.jpg").source == "none"  # a plain comment is not a prompt


def hide(image: Image.Image, payload: bytes, signature: str) -> Image.Image:
    """A tiny stealth encoder: signature, 32-bit bit length, payload, column by column in the low bits."""
    data = signature.encode() + (len(payload) * 8).to_bytes(4, "big") + payload
    bits = [(byte >> (7 - k)) & 1 for byte in data for k in range(8)]
    alpha = "png" in signature
    image = image.convert("RGBA" if alpha else "RGB")
    pixels = image.load()
    per_pixel = 1 if alpha else 3
    assert len(bits) <= image.width * image.height * per_pixel, "image too small for the payload"
    position = 0
    for x in range(image.width):
        for y in range(image.height):
            if position >= len(bits):
                return image
            value = list(pixels[x, y])
            channels = [3] if alpha else [0, 1, 2]
            for c in channels:
                if position < len(bits):
                    value[c] = (value[c] & ~1) | bits[position]
                    position += 1
            pixels[x, y] = tuple(value)
    return image


def stealth_png(
    tmp_path: Path, payload: bytes, signature: str, size=(64, 64), chunks=None, name="s.png"
) -> Path:
    image = hide(Image.new("RGBA", size, (120, 130, 140, 255)), payload, signature)
    info = PngInfo()
    for key, value in (chunks or {}).items():
        info.add_text(key, value)
    path = tmp_path / name
    image.save(path, pnginfo=info)
    return path


def test_real_a1111_stealth_png():
    meta = read_metadata(real("AUTOMATIC1111__automatic1111_stealth.png"))
    assert meta.source == "a1111" and not meta.errors
    assert settings(meta) == ("a circle", "a square", 2015833630, 20, 7.0, "Euler", 64, 64)
    assert meta.unknown == {"Clip skip": "2"} and "stealth_pngcomp" in meta.info["hidden_in"]
    assert_recipe(meta)


@pytest.mark.parametrize(
    ("signature", "compress"),
    [
        ("stealth_pngcomp", True),
        ("stealth_pnginfo", False),
        ("stealth_rgbcomp", True),
        ("stealth_rgbinfo", False),
    ],
)
def test_stealth_hand_made(tmp_path, signature, compress):
    payload = gzip.compress(A1111.encode()) if compress else A1111.encode()
    meta = read_metadata(stealth_png(tmp_path, payload, signature, size=(48, 40)))
    assert meta.source == "a1111" and not meta.errors and settings(meta) == A1111_SETTINGS
    assert signature in meta.info["hidden_in"]
    assert_recipe(meta)


def test_stealth_signature_in_the_wrong_channel_is_nothing(tmp_path):
    image = hide(Image.new("RGB", (64, 64)), A1111.encode(), "stealth_pnginfo").convert(
        "RGB"
    )  # alpha dropped
    image.save(tmp_path / "s.png")
    assert read_metadata(tmp_path / "s.png").source == "none"
    rgb = hide(Image.new("RGB", (64, 64)), A1111.encode(), "stealth_rgbinfo")
    rgb.save(tmp_path / "s.jpg", quality=95)  # lossy: the low bits are gone, and JPEG is never searched
    assert read_metadata(tmp_path / "s.jpg").source == "none"


def test_text_chunk_wins_over_stealth_unless_it_is_only_a_prompt(tmp_path):
    hidden = gzip.compress(A1111.encode())
    chunk = A1111.replace("Seed: 3141592653", "Seed: 7")
    meta = read_metadata(stealth_png(tmp_path, hidden, "stealth_pngcomp", chunks={"parameters": chunk}))
    assert meta.request["seed"] == 7 and "hidden_in" not in meta.info
    meta = read_metadata(
        stealth_png(tmp_path, hidden, "stealth_pngcomp", chunks={"parameters": "a castle"}, name="p.png")
    )
    assert meta.request["seed"] == 3141592653 and "hidden_in" in meta.info


def test_stealth_novelai_payload_is_read_as_its_chunks(tmp_path):
    chunks = {
        "Description": "1girl, forest",
        "Software": "NovelAI",
        "Source": "NovelAI Diffusion V3 7BCCAA2C",
        "Comment": json.dumps(
            {
                "steps": 28,
                "sampler": "k_euler",
                "seed": 12,
                "scale": 5.0,
                "uc": "bad hands",
                "width": 832,
                "height": 1216,
            }
        ),
    }
    meta = read_metadata(stealth_png(tmp_path, gzip.compress(json.dumps(chunks).encode()), "stealth_pngcomp"))
    assert meta.source == "novelai"
    assert settings(meta) == ("1girl, forest", "bad hands", 12, 28, 5.0, "Euler", 832, 1216)


def test_hostile_stealth_payloads_are_reported_never_raised(tmp_path):
    signature = b"stealth_pnginfo"
    # a length of 4 Gbit in a 64×64 image
    image = hide(Image.new("RGBA", (64, 64)), b"", "stealth_pnginfo")
    bits = "".join(f"{b:08b}" for b in signature + (2**32 - 1).to_bytes(4, "big"))
    pixels = image.load()
    for k, bit in enumerate(bits):
        x, y = divmod(k, 64)
        r, g, b, a = pixels[x, y]
        pixels[x, y] = (r, g, b, (a & ~1) | int(bit))
    image.save(tmp_path / "huge.png")
    meta = read_metadata(tmp_path / "huge.png")
    assert meta.source == "none" and any("claim" in e and "not read" in e for e in meta.errors)
    # longer than the image but under the cap: what is there is read, and the cut is reported
    cut = stealth_png(tmp_path, A1111.encode(), "stealth_pnginfo", name="cut.png")
    image = Image.open(cut)
    image.load()
    image = image.crop((0, 0, 64, 64))
    assert stealth.read_hidden_text(image).text == A1111
    small = image.crop((0, 0, 20, 64))  # the payload's end is gone
    found = stealth.read_hidden_text(small)
    assert found.text and A1111.startswith(found.text) and "holds only" in found.errors[0]
    # a gzip bomb, and bytes that are not UTF-8
    bomb = gzip.compress(b"a" * (stealth.MAX_PAYLOAD_BYTES + 10))
    meta = read_metadata(stealth_png(tmp_path, bomb, "stealth_pngcomp", size=(200, 200), name="bomb.png"))
    assert meta.source == "none" and any("decompress to more" in e for e in meta.errors)
    latin1 = b"caf\xe9\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64"
    meta = read_metadata(stealth_png(tmp_path, latin1, "stealth_pnginfo", name="bytes.png"))
    assert meta.request["prompt"] == "caf\N{REPLACEMENT CHARACTER}" and meta.request["steps"] == 20
    assert any("not all UTF-8" in e for e in meta.errors)
    meta = read_metadata(stealth_png(tmp_path, b"not gzip at all", "stealth_pngcomp", name="nogz.png"))
    assert meta.source == "none" and any("could not be decompressed" in e for e in meta.errors)


# ---- ComfyUI ------------------------------------------------------------------------------------

BASE = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15/dreamshaper_8.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 42,
            "steps": 25,
            "cfg": 6.5,
            "sampler_name": "dpmpp_2m",
            "scheduler": "karras",
            "denoise": 1.0,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}
BASE_SETTINGS = ("a lighthouse at dusk", "blurry", 42, 25, 6.5, "DPM++ 2M Karras", 512, 768)
HIRES = {
    **BASE,
    "10": {
        "class_type": "LatentUpscaleBy",
        "inputs": {"upscale_method": "nearest-exact", "scale_by": 1.5, "samples": ["3", 0]},
    },
    "11": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 43,
            "steps": 12,
            "cfg": 6.5,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 0.45,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["10", 0],
        },
    },
    "12": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["4", 2]}},
    "13": {"class_type": "SaveImage", "inputs": {"filename_prefix": "hires", "images": ["12", 0]}},
}


def comfy(tmp_path: Path, graph: dict, size=(64, 48), name="c.png") -> Path:
    return png_with(
        tmp_path,
        {"prompt": json.dumps(graph), "workflow": json.dumps({"nodes": [], "links": []})},
        size=size,
        name=name,
    )


def test_comfyui_plain_graph(tmp_path):
    meta = read_metadata(comfy(tmp_path, BASE))
    assert meta.source == "comfyui" and not meta.errors and settings(meta) == BASE_SETTINGS
    assert meta.request["model_id"] == "dreamshaper_8" and meta.unknown == {}
    assert_recipe(meta)


def test_comfyui_two_passes_follow_the_saved_image_by_its_size(tmp_path):
    meta = read_metadata(comfy(tmp_path, HIRES, size=(768, 1152)))  # the hires output
    assert settings(meta) == BASE_SETTINGS  # the recipe is the first pass's
    assert "node 11" in meta.unknown["pass 2"] and "denoise 0.45" in meta.unknown["pass 2"]
    assert "768×1152" in meta.unknown["pass 2"] and "no control here" in meta.unknown["pass 2"]
    assert "saves 2 images" in meta.unknown["outputs"]
    first = read_metadata(
        comfy(tmp_path, HIRES, size=(512, 768), name="first.png")
    )  # the first pass's output
    assert settings(first) == BASE_SETTINGS and "pass 2" not in first.unknown
    assert_recipe(meta)


def test_comfyui_ksampler_advanced_base_and_refiner(tmp_path):
    graph = {k: v for k, v in BASE.items() if k != "3"}
    graph["20"] = {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "sd_xl_refiner_1.0.safetensors"},
    }
    graph["3"] = {
        "class_type": "KSamplerAdvanced",
        "inputs": {
            "add_noise": "enable",
            "noise_seed": 7,
            "steps": 30,
            "cfg": 8.0,
            "sampler_name": "euler_ancestral",
            "scheduler": "normal",
            "start_at_step": 0,
            "end_at_step": 24,
            "return_with_leftover_noise": "enable",
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    }
    graph["21"] = {
        "class_type": "KSamplerAdvanced",
        "inputs": {
            "add_noise": "disable",
            "noise_seed": 0,
            "steps": 30,
            "cfg": 8.0,
            "sampler_name": "euler_ancestral",
            "scheduler": "normal",
            "start_at_step": 24,
            "end_at_step": 10000,
            "return_with_leftover_noise": "disable",
            "model": ["20", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["3", 0],
        },
    }
    graph["8"] = {"class_type": "VAEDecode", "inputs": {"samples": ["21", 0], "vae": ["4", 2]}}
    meta = read_metadata(comfy(tmp_path, graph))
    assert settings(meta) == ("a lighthouse at dusk", "blurry", 7, 30, 8.0, "Euler a", 512, 768)
    assert "steps 24–30 of 30" in meta.unknown["pass 2"] and "sd_xl_refiner_1.0" in meta.unknown["pass 2"]
    assert "finished the steps node 3 left noisy" in meta.unknown["pass 2"]
    assert_recipe(meta)


def test_comfyui_sampler_custom_with_karras_sigmas(tmp_path):
    graph = {k: v for k, v in BASE.items() if k != "3"}
    graph["30"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m_sde"}}
    graph["31"] = {
        "class_type": "KarrasScheduler",
        "inputs": {"steps": 18, "sigma_max": 14.6, "sigma_min": 0.03, "rho": 7},
    }
    graph["3"] = {
        "class_type": "SamplerCustom",
        "inputs": {
            "model": ["4", 0],
            "add_noise": True,
            "noise_seed": 99,
            "cfg": 5.0,
            "positive": ["6", 0],
            "negative": ["7", 0],
            "sampler": ["30", 0],
            "sigmas": ["31", 0],
            "latent_image": ["5", 0],
        },
    }
    meta = read_metadata(comfy(tmp_path, graph))
    assert settings(meta) == ("a lighthouse at dusk", "blurry", 99, 18, 5.0, "DPM++ 2M SDE Karras", 512, 768)
    assert_recipe(meta)


def test_comfyui_sampler_custom_advanced_with_cfg_guider(tmp_path):
    graph = {k: v for k, v in BASE.items() if k != "3"}
    graph.update(
        {
            "40": {"class_type": "RandomNoise", "inputs": {"noise_seed": 5}},
            "41": {
                "class_type": "CFGGuider",
                "inputs": {"model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "cfg": 4.5},
            },
            "42": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "uni_pc_bh2"}},
            "43": {
                "class_type": "BasicScheduler",
                "inputs": {"model": ["4", 0], "scheduler": "exponential", "steps": 22, "denoise": 1.0},
            },
            "3": {
                "class_type": "SamplerCustomAdvanced",
                "inputs": {
                    "noise": ["40", 0],
                    "guider": ["41", 0],
                    "sampler": ["42", 0],
                    "sigmas": ["43", 0],
                    "latent_image": ["5", 0],
                },
            },
        }
    )
    meta = read_metadata(comfy(tmp_path, graph))
    assert settings(meta) == ("a lighthouse at dusk", "blurry", 5, 22, 4.5, "UniPC", 512, 768)
    assert "exponential" in meta.unknown["schedule"] and meta.request["model_id"] == "dreamshaper_8"
    assert_recipe(meta)


def test_comfyui_image_to_image_reports_its_strength(tmp_path):
    graph = {k: v for k, v in BASE.items() if k != "5"}
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": "photo.png"}}
    graph["12"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}
    graph["3"] = {**BASE["3"], "inputs": {**BASE["3"]["inputs"], "denoise": 0.6, "latent_image": ["12", 0]}}
    meta = read_metadata(comfy(tmp_path, graph, size=(640, 480)))
    assert meta.info["source"] == {"image": "photo.png", "strength": 0.6}
    assert "strength 0.6" in meta.unknown["denoise"] and "41-step schedule" in meta.unknown["denoise"]
    assert (meta.request["width"], meta.request["height"]) == (640, 480)  # the source's size is the file's
    assert_recipe(meta)


def test_comfyui_denoise_on_an_empty_latent_and_loras(tmp_path):
    graph = {
        **BASE,
        "3": {**BASE["3"], "inputs": {**BASE["3"]["inputs"], "denoise": 0.8, "model": ["15", 0]}},
        "15": {
            "class_type": "LoraLoader",
            "inputs": {
                "lora_name": "styles/ink.safetensors",
                "strength_model": 0.7,
                "strength_clip": 0.7,
                "model": ["4", 0],
                "clip": ["4", 1],
            },
        },
    }
    meta = read_metadata(comfy(tmp_path, graph))
    assert "last 80% of its schedule" in meta.unknown["denoise"] and "source" not in meta.info
    assert meta.unknown["loras"] == "ink (0.7): LoRAs; no control here"
    assert meta.info["add_ons"] == [{"kind": "lora", "name": "styles/ink.safetensors", "weight": 0.7}]
    assert meta.request["model_id"] == "dreamshaper_8"


def test_comfyui_workflow_only_cycles_and_garbage_are_reported(tmp_path):
    meta = read_metadata(png_with(tmp_path, {"workflow": json.dumps({"nodes": []})}))
    assert meta.source == "none" and "only ComfyUI's 'workflow'" in meta.errors[0]
    cyclic = {
        "1": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 1,
                "steps": 5,
                "cfg": 2,
                "sampler_name": "euler",
                "positive": ["2", 0],
                "negative": ["2", 0],
                "latent_image": ["2", 0],
                "model": ["2", 0],
            },
        },
        "2": {
            "class_type": "ConditioningCombine",
            "inputs": {"conditioning_1": ["2", 0], "samples": ["1", 0], "model": ["2", 0]},
        },
    }
    meta = read_metadata(comfy(tmp_path, cyclic, name="cyclic.png"))
    assert meta.source == "comfyui" and meta.request["steps"] == 5
    for graph in (
        {"1": {"class_type": "KSampler", "inputs": "nope"}},
        {"1": "x"},
        [],
        {
            "1": {
                "class_type": "KSampler",
                "inputs": {"steps": ["9", 0], "seed": {"a": 1}, "positive": [1, 2, 3]},
            }
        },
    ):
        read_metadata(comfy(tmp_path, graph, name="g.png"))  # never raises


def test_real_comfyui_img2img():
    meta = read_metadata(real("ComfyUI__img2img_cropped.png"))
    assert meta.source == "comfyui" and not meta.errors
    assert settings(meta)[:6] == (
        "photograph of victorian woman with wings, sky clouds, meadow grass\n",
        "watermark, text\n",
        280823642470253,
        20,
        8.0,
        "DPM++ 2M",
    )  # old name "sample_dpmpp_2m"
    assert meta.info["source"] == {"image": "example.png", "strength": pytest.approx(0.87)}
    assert "image to image from example.png at strength 0.87" in meta.unknown["denoise"]
    assert meta.request["model_id"] == "v1-5-pruned-emaonly"
    assert_recipe(meta, allowed=("model.id", "output.seed"))  # ComfyUI seeds go up to 2**64


def test_real_comfyui_two_pass_unclip():
    meta = read_metadata(real("ComfyUI__unclip_2pass_cropped.png"))
    assert settings(meta) == (
        "\n(waifu, anime, exceptional, best aesthetic, new, newest, best quality, masterpiece, "
        "extremely detailed:1.2)\n",
        meta.request["negative_prompt"],
        1106257833005336,
        26,
        8.0,
        "UniPC",
        1280,
        704,
    )
    assert meta.request["negative_prompt"].startswith("lowres, (bad anatomy)")
    assert meta.request["model_id"] == "wd-1-5-beta2-aesthetic-unclip-h-fp32"
    assert "node 41" in meta.unknown["pass 2"] and "denoise 0.52" in meta.unknown["pass 2"]
    assert "cardosAnimated_v20" in meta.unknown["pass 2"]
    assert "unCLIPConditioning ×2" in meta.unknown["nodes"] and "mountains.png" in meta.unknown["images"]
    assert meta.unknown["vae"].startswith("kl-f8-anime2.ckpt")
    assert_recipe(meta, allowed=("model.id", "output.seed"))


def test_real_comfyui_area_prompts_and_second_pass():
    meta = read_metadata(real("ComfyUI__night_evening_day_morning_cropped.png"))
    prompt, negative, seed, steps, cfg, scheduler, width, height = settings(meta)
    assert (seed, steps, cfg, scheduler, width, height) == (335608130539327, 13, 8.5, "DPM++ SDE", 704, 1280)
    assert prompt.startswith("(best quality) (night:1.3)") and prompt.endswith("national park scenery")
    assert negative.startswith("(hands), text, error")
    assert meta.unknown["prompt"].startswith("5 texts") and "ConditioningSetArea ×4" in meta.unknown["nodes"]
    assert "clip layer -2" in meta.unknown["clip_skip"].lower()
    assert "dpmpp_2m (simple)" in meta.unknown["pass 2"] and "AbyssOrangeMix2_hard" in meta.unknown["pass 2"]
    assert meta.request["model_id"] == "Anything-V3.0"
    assert_recipe(meta, allowed=("model.id", "output.seed"))


def test_real_comfyui_composited_ksampler_advanced():
    meta = read_metadata(real("ComfyUI__noisy_latents_3_subjects_cropped.png"))
    prompt, _, seed, steps, cfg, scheduler, width, height = settings(meta)
    # the background pass all others are composited onto, which adds the noise (steps 0–4 of 16)
    assert (seed, steps, cfg, scheduler, width, height) == (512136241112371, 16, 7.0, "DPM++ SDE", 1280, 704)
    assert prompt.startswith("sky clouds nature national park")
    assert "node 58" in meta.unknown["pass 2"] and "steps 4–16 of 16" in meta.unknown["pass 2"]
    assert "node 24" in meta.unknown["pass 3"] and "denoise 0.54" in meta.unknown["pass 3"]
    assert meta.unknown["other samplers"].startswith("nodes 57, 64, 73")
    assert_recipe(meta, allowed=("model.id", "output.seed"))


# ---- Fooocus ------------------------------------------------------------------------------------

FOOOCUS = {
    "adm_guidance": "(1.5, 0.8, 0.3)",
    "base_model": "juggernautXL_v8Rundiffusion",
    "base_model_hash": "aeb7e9e689",
    "clip_skip": 2,
    "full_negative_prompt": ["(worst quality:1.4)", "anime, cartoon"],
    "full_prompt": ["cinematic still a red fox . film grain", "a red fox, highly detailed"],
    "guidance_scale": 4,
    "loras": [["sd_xl_offset_example-lora_1.0.safetensors", 0.1, "4852686128"]],
    "metadata_scheme": "fooocus",
    "negative_prompt": "people",
    "performance": "Quality",
    "prompt": "a red fox",
    "prompt_expansion": "a red fox, highly detailed",
    "refiner_model": "None",
    "refiner_switch": 0.5,
    "resolution": "(1152, 896)",
    "sampler": "dpmpp_2m_sde_gpu",
    "scheduler": "karras",
    "seed": "123456789",
    "sharpness": 2,
    "steps": 60,
    "styles": "['Fooocus V2', 'Fooocus Photograph']",
    "vae": "Default (model)",
    "version": "Fooocus v2.5.5",
}
FOOOCUS_SETTINGS = ("a red fox", "people", 123456789, 60, 4.0, "DPM++ 2M SDE Karras", 1152, 896)


def test_fooocus_png(tmp_path):
    meta = read_metadata(png_with(tmp_path, {"parameters": json.dumps(FOOOCUS), "fooocus_scheme": "fooocus"}))
    assert meta.source == "fooocus" and not meta.errors and settings(meta) == FOOOCUS_SETTINGS
    assert meta.request["model_id"] == "juggernautXL_v8Rundiffusion"
    notes = meta.unknown
    assert notes["styles"].startswith("Fooocus V2, Fooocus Photograph: Fooocus styles")
    assert notes["performance"].startswith("Quality:") and "sharpness" in notes and "adm_guidance" in notes
    assert notes["loras"] == "sd_xl_offset_example-lora_1.0 (0.1): LoRAs; no control here"
    assert "refiner_model" not in notes and "vae" not in notes  # "None" and the default say nothing
    assert "_gpu variant" in notes["sampler"] and all(
        v.endswith("no control here") or "_gpu" in v for v in notes.values()
    )
    assert meta.info["full_prompt"] == FOOOCUS["full_prompt"]
    assert_recipe(meta)


def test_fooocus_jpeg_as_fooocus_writes_it(tmp_path):
    """Fooocus: UserComment = the JSON (in IFD0), MakerNote = the scheme, Software = its version."""
    exif = Image.Exif()
    exif[0x9286] = json.dumps(FOOOCUS)
    exif[0x927C] = "fooocus"
    exif[0x0131] = "Fooocus v2.5.5"
    Image.new("RGB", (16, 16)).save(tmp_path / "f.jpg", exif=exif.tobytes())
    meta = read_metadata(tmp_path / "f.jpg")
    assert meta.source == "fooocus" and settings(meta) == FOOOCUS_SETTINGS


def test_real_fooocus():
    meta = read_metadata(real("Fooocus__fooocus1_cropped.png"))
    assert meta.source == "fooocus" and not meta.errors
    assert settings(meta) == (
        "a smiling goldfish",
        "",
        6952411511246973023,
        30,
        4.0,
        "DPM++ 2M SDE Karras",
        768,
        1280,
    )
    assert meta.request["model_id"] == "juggernautXL_v8Rundiffusion"
    assert meta.unknown["styles"].startswith("Fooocus V2, Fooocus Enhance, Fooocus Sharp:")
    assert meta.unknown["performance"].startswith("Speed:") and meta.unknown["clip_skip"].startswith("2:")
    assert meta.info["versions"] == {"Fooocus": "Fooocus v2.4.3"}
    recipe = assert_recipe(meta, allowed=("model.id", "output.seed"))
    assert recipe.output.seed > MAX_SEED  # kept as written; validation tells the user


# ---- InvokeAI -----------------------------------------------------------------------------------

DREAM = '"a cabin in the woods, snow [people, text]" -s 40 -S 1234 -W 640 -H 512 -C 7.5 -A k_euler_a -U 2 0.8'


def test_invokeai_dream_text(tmp_path):
    meta = read_metadata(png_with(tmp_path, {"Dream": DREAM}))
    assert meta.source == "invokeai" and not meta.errors and meta.info["format"] == "Dream"
    assert settings(meta) == (
        "a cabin in the woods, snow",
        "people, text",
        1234,
        40,
        7.5,
        "Euler a",
        640,
        512,
    )
    assert meta.unknown == {"-U": "2 0.8: upscaling (scale, strength); no control here"}
    assert "model_id" not in meta.request  # Dream names no model
    assert_recipe(meta)


def test_invokeai_sd_metadata(tmp_path):
    sd = {
        "model": "stable diffusion",
        "model_weights": "stable-diffusion-1.5",
        "model_hash": "cc6cb27103",
        "app_id": "invoke-ai/InvokeAI",
        "app_version": "2.2.5",
        "image": {
            "prompt": [{"prompt": "a red car [blurry]", "weight": 1.0}],
            "steps": 30,
            "cfg_scale": 7.0,
            "threshold": 0,
            "perlin": 0.1,
            "height": 512,
            "width": 768,
            "seed": 99,
            "seamless": False,
            "hires_fix": False,
            "type": "txt2img",
            "postprocessing": None,
            "sampler": "k_dpmpp_2_a",
            "variations": [[5, 0.2]],
        },
    }
    meta = read_metadata(png_with(tmp_path, {"sd-metadata": json.dumps(sd), "Dream": '"x" -s 1'}))
    assert meta.info["format"] == "sd-metadata" and meta.request["model_id"] == "stable-diffusion-1.5"
    assert settings(meta) == ("a red car", "blurry", 99, 30, 7.0, None, 768, 512)
    assert "no equivalent" in meta.unknown["sampler"]  # DPM++ 2S a
    assert meta.unknown["perlin"].startswith("0.1: Perlin") and meta.unknown["variations"].startswith(
        "[[5, 0.2]]"
    )
    assert_recipe(meta)


def test_real_invokeai_dream_and_sd_metadata():
    dream = read_metadata(real("InvokeAI__invokeai_dream1.png"))
    sdmeta = read_metadata(real("InvokeAI__invokeai_sdmeta1.png"))
    expected = (
        "professional full body photo of young woman",
        "rendering, glowing eyes, skinny",
        2980747362,
        50,
        5.0,
        "LMS",
        512,
        768,
    )
    for meta in (dream, sdmeta):
        assert meta.source == "invokeai" and not meta.errors
        prompt, *rest = settings(meta)
        assert (
            prompt.startswith(expected[0])
            and prompt.endswith("film grain, low contrast")
            and tuple(rest) == expected[1:]
        )
    assert (
        dream.info["format"] == "Dream"
        and "GFPGAN" in dream.unknown["-G"]
        and "CodeFormer" in dream.unknown["-cf"]
    )
    assert sdmeta.info["format"] == "sd-metadata" and sdmeta.request["model_id"] == "deliberateForInvoke_v08"
    assert "codeformer" in sdmeta.unknown["postprocessing codeformer"]
    assert_recipe(dream)
    assert_recipe(sdmeta)


def test_real_invokeai_metadata():
    meta = read_metadata(real("InvokeAI__invokeai_imeta1.png"))
    assert meta.source == "invokeai"
    assert settings(meta) == (
        "digital artwork, oil painting. painterly brushstrokes, holidays,",
        meta.request["negative_prompt"],
        3293022630,
        35,
        8.0,
        "Euler",
        1024,
        1024,
    )
    assert (
        meta.unknown["ipAdapters"]
        == "ip-adapter-plus_sdxl_vit-h (0.45): IP-Adapter image prompts; no control here"
    )
    assert meta.unknown["vae"] == "VAEFix: a separate VAE; no control here"
    assert_recipe(meta)


# ---- NovelAI ------------------------------------------------------------------------------------


def test_novelai_png(tmp_path):
    comment = {
        "prompt": "1girl, cherry blossoms, best quality",
        "steps": 28,
        "height": 1216,
        "width": 832,
        "scale": 5.5,
        "uncond_scale": 1.0,
        "cfg_rescale": 0.1,
        "seed": 3054201234,
        "n_samples": 1,
        "noise_schedule": "karras",
        "sampler": "k_dpmpp_2m",
        "sm": True,
        "sm_dyn": False,
        "ucPreset": 0,
        "qualityToggle": True,
        "uc": "lowres, bad anatomy",
        "strength": 0.7,
        "noise": 0.0,
        "request_type": "PromptGenerateRequest",
        "signed_hash": "abc",
    }
    chunks = {
        "Title": "AI generated image",
        "Description": "1girl, cherry blossoms",
        "Software": "NovelAI",
        "Source": "Stable Diffusion XL C1E1DE52",
        "Generation time": "5.1",
        "Comment": json.dumps(comment),
    }
    meta = read_metadata(png_with(tmp_path, chunks, mode="RGBA"))
    assert meta.source == "novelai" and not meta.errors
    assert settings(meta) == (
        "1girl, cherry blossoms, best quality",
        "lowres, bad anatomy",
        3054201234,
        28,
        5.5,
        "DPM++ 2M Karras",
        832,
        1216,
    )
    notes = meta.unknown
    assert notes["ucPreset"].startswith("0: NovelAI's undesired-content preset") and "qualityToggle" in notes
    assert notes["sm"].startswith("SMEA:") and notes["cfg_rescale"].startswith("0.1: a NovelAI setting")
    assert (
        "only when it starts from an image" in notes["strength"] and "runs only on NovelAI" in notes["model"]
    )
    assert "signed_hash" not in notes and "uncond_scale" not in notes
    assert_recipe(meta)


def test_a_plain_comment_chunk_is_not_novelai(tmp_path):
    meta = read_metadata(png_with(tmp_path, {"Comment": "Created with GIMP", "parameters": A1111}))
    assert meta.source == "a1111" and not meta.errors


def test_real_novelai():
    meta = read_metadata(real("NovelAI__novelai1_cropped.png"))
    assert meta.source == "novelai" and not meta.errors
    prompt, negative, *rest = settings(meta)
    assert prompt == "masterpiece, best quality,  cat, space, icon" and negative.startswith(
        "lowres, bad anatomy"
    )
    assert tuple(rest) == (
        2253955223,
        50,
        10.0,
        "Euler a",
        1,
        1,
    )  # no size in this Comment: the (cropped) file's
    assert meta.request["model_id"] == "Stable Diffusion 1D44365E"
    assert meta.unknown["strength"].startswith("strength 0.4, noise 0.0:")
    assert_recipe(meta)


# ---- SwarmUI ------------------------------------------------------------------------------------

SWARM = {
    "sui_image_params": {
        "prompt": "a photo of a cat",
        "negativeprompt": "dog",
        "model": "OfficialStableDiffusion/sd_xl_base_1.0",
        "seed": "1234",
        "steps": 20,
        "cfgscale": "7.0",
        "aspectratio": "1:1",
        "width": 1024,
        "height": 1024,
        "sampler": "euler_ancestral",
        "scheduler": "normal",
        "automaticvae": True,
        "loras": "detail,ink",
        "loraweights": "0.8,1",
        "refinermodel": "OfficialStableDiffusion/sd_xl_refiner_1.0",
        "refinercontrolpercentage": 0.2,
        "swarm_version": "0.9.3.1",
    },
    "sui_extra_data": {"date": "2024-11-13", "generation_time": "6.11 (prep) and 4.84 (gen) seconds"},
}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_swarmui(tmp_path, fmt):
    text = json.dumps(SWARM, indent=2)
    if fmt == "PNG":
        path = png_with(tmp_path, {"parameters": text})
    else:
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + text.encode("utf-16-be")
        path = tmp_path / "s.jpg"
        Image.new("RGB", (16, 16)).save(path, exif=exif.tobytes())
    meta = read_metadata(path)
    assert meta.source == "swarmui" and not meta.errors
    assert settings(meta) == ("a photo of a cat", "dog", 1234, 20, 7.0, "Euler a", 1024, 1024)
    assert meta.request["model_id"] == "sd_xl_base_1.0"
    assert meta.unknown["loras"] == "detail (0.8), ink (1): LoRAs; no control here"
    assert "sd_xl_refiner_1.0: a refiner model" in meta.unknown["refinermodel"]
    assert "aspectratio" not in meta.unknown and meta.info["sui_extra_data"]["date"] == "2024-11-13"
    assert_recipe(meta)


# ---- hostile and odd input ----------------------------------------------------------------------


def test_utf8_written_into_a_latin1_text_chunk_is_repaired(tmp_path):
    text = "un café près du lac 日本\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x48"
    meta = read_metadata(png_with(tmp_path, {"parameters": text.encode("utf-8")}))  # raw bytes: a tEXt chunk
    assert meta.request["prompt"] == "un café près du lac 日本"
    latin1 = read_metadata(
        png_with(tmp_path, {"parameters": "café\nSteps: 20, Sampler: Euler, Seed: 1"}, name="l.png")
    )
    assert latin1.request["prompt"] == "café"
    junk = read_metadata(
        png_with(tmp_path, {"Dream": b'"\xff\xfe\x80" -s x -S 5', "sd-metadata": b"\xff{"}, name="j.png")
    )
    assert junk.source == "invokeai" and junk.request["seed"] == 5 and any("-s" in e for e in junk.errors)


def test_huge_and_deep_chunks_are_reported_never_raised(tmp_path, monkeypatch):
    deep = png_with(
        tmp_path,
        {"parameters": "{" + '"a":[' * 50_000 + "1" + "]" * 50_000 + "}", "Comment": "[" * 100_000},
        name="deep.png",
    )
    meta = read_metadata(deep)
    assert meta.source in ("none", "a1111")  # read as text at worst, never raised
    monkeypatch.setattr(metadata_module, "MAX_CHUNK_CHARS", 1000)
    meta = read_metadata(
        png_with(
            tmp_path, {"prompt": json.dumps({**BASE, "pad": {"inputs": {"x": "y" * 2000}}})}, name="big.png"
        )
    )
    assert meta.source == "none" and "too long for settings" in meta.errors[0]


def test_a_text_chunk_bomb_is_reported(tmp_path):
    info = PngInfo()
    info.add_text("parameters", "a" * 3_000_000, zip=True)  # zTXt: a few KiB that inflate to 3 MB
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG", pnginfo=info)
    (tmp_path / "bomb.png").write_bytes(buffer.getvalue())
    meta = read_metadata(tmp_path / "bomb.png")
    assert meta.source == "none" and "too large to read safely" in meta.errors[0]
