"""Image to image, inpainting, hires fix and variations in the metadata: A1111's own keys in A1111's
order, read back into the recipe's parts; the init picture and mask kept with the output."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from desktop_app.core.recipe import HiresFix, Inpainting, Outpaint, Recipe, Source, Variation
from desktop_app.gallery import formats
from desktop_app.gallery.a1111 import format_parameters, parse_parameters, split_pairs
from desktop_app.gallery.library import SOURCES_FOLDER
from desktop_app.gallery.metadata import read_metadata, recipe_from_image_file
from desktop_app.gallery.scan import scan_images

from .conftest import make_request, save_image, tiny_image

# AUTOMATIC1111's key order (modules/processing.py, create_infotext), the keys these features use
A1111_ORDER = ["Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model hash", "Model", "Variation seed",
               "Variation seed strength", "Seed resize from", "Denoising strength", "ENSD", "Mask blur", "Inpaint area",
               "Masked area padding", "Masked content", "Hires upscale", "Hires steps", "Hires upscaler", "Version"]


def keys(text: str) -> list[str]:
    return list(split_pairs(text.strip().split("\n")[-1]))


def in_a1111_order(found: list[str]) -> bool:
    known = [k for k in found if k in A1111_ORDER]
    return known == sorted(known, key=A1111_ORDER.index)


def inpaint_recipe() -> Recipe:
    source = Source("/pictures/start.png", "/pictures/mask.png", 0.65, fit="crop",
                    inpaint=Inpainting(blur=6, content="noise", area="masked", padding=24), outpaint=Outpaint(left=16, bottom=8))
    return make_request(source=source, variation=Variation(seed=99, strength=0.25, resize_from_width=64, resize_from_height=32),
                        noise_seed_delta=31337)


def test_inpainting_writes_a1111_keys_in_a1111_order_and_reads_them_back():
    recipe = inpaint_recipe()
    text = format_parameters(recipe, width=32, height=32, model_hash="0123456789", version="Diffuse Studio 1")
    pairs = split_pairs(text.split("\n")[-1])
    assert in_a1111_order(keys(text))
    assert (pairs["Denoising strength"], pairs["Mask blur"], pairs["Inpaint area"], pairs["Masked area padding"],
            pairs["Masked content"]) == ("0.65", "6", "Only masked", "24", "latent noise")
    assert (pairs["Variation seed"], pairs["Variation seed strength"], pairs["Seed resize from"]) == ("99", "0.25", "64x32")
    parsed = parse_parameters(text)
    assert not parsed.errors and not parsed.unknown
    restored = Recipe.from_flat(parsed.fields)
    assert restored.source == Source("", "", 0.65, fit="crop", inpaint=recipe.source.inpaint, outpaint=recipe.source.outpaint)
    assert restored.variation == recipe.variation and restored.sampling.noise_seed_delta == 31337


def test_hires_fix_writes_the_first_pass_size_and_the_second_pass_strength():
    recipe = make_request(width=32, height=32, hires=HiresFix(scale=2.0, steps=12, strength=0.45, upscaler="lanczos"))
    text = format_parameters(recipe, width=32, height=32)
    pairs = split_pairs(text.split("\n")[-1])
    assert in_a1111_order(keys(text))
    assert (pairs["Size"], pairs["Denoising strength"], pairs["Hires upscale"], pairs["Hires steps"],
            pairs["Hires upscaler"]) == ("32x32", "0.45", "2", "12", "Lanczos")
    restored = Recipe.from_flat(parse_parameters(text).fields)
    assert restored.hires == recipe.hires and restored.source is None


def test_an_a1111_img2img_picture_restores_its_controls(tmp_path):
    """Text as AUTOMATIC1111 writes it for an inpainting job: every one of these becomes a control's value."""
    text = ("a red circle on a white background\nNegative prompt: blurry\n"
            "Steps: 30, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 5, Size: 512x512, "
            "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.6, Mask blur: 4, "
            "Inpaint area: Only masked, Masked area padding: 32, Masked content: fill, Version: v1.10.1")
    info = PngInfo()
    info.add_text("parameters", text)
    path = tmp_path / "from-a1111.png"
    tiny_image().save(path, pnginfo=info)
    recipe = recipe_from_image_file(path)
    assert (recipe.sampling.steps, recipe.sampling.scheduler, recipe.output.seed, recipe.output.width) == (30, "Euler a", 5, 512)
    assert recipe.source.strength == 0.6 and recipe.source.image == ""  # the picture itself stays with A1111
    assert recipe.source.inpaint == Inpainting(blur=4, content="fill", area="masked", padding=32)
    hires = ("x\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, "
             "Model: v1-5, Denoising strength: 0.7, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, "
             "Variation seed: 42, Variation seed strength: 0.1")
    restored = Recipe.from_flat(parse_parameters(hires).fields)
    assert restored.hires == HiresFix(scale=2.0, steps=10, strength=0.7, upscaler="latent") and restored.source is None
    assert restored.variation == Variation(seed=42, strength=0.1)


def test_unknown_choices_are_kept_as_unknown_keys():
    parsed = parse_parameters("x\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Denoising strength: 0.5, "
                              "Masked content: latent nothing, Hires upscale: 2, Hires upscaler: R-ESRGAN 4x+")
    assert parsed.unknown == {"Masked content": "latent nothing", "Hires upscaler": "R-ESRGAN 4x+"}


def test_the_init_picture_and_mask_are_kept_with_the_output(out_dir, tmp_path):
    start, mask = tmp_path / "elsewhere" / "start.png", tmp_path / "elsewhere" / "mask.png"
    start.parent.mkdir()
    tiny_image("green").save(start)
    Image.new("L", (32, 32), 255).save(mask)
    recipe = make_request(source=Source(str(start), str(mask), 0.5, inpaint=Inpainting(blur=2)))
    first = save_image(tiny_image(), recipe, output_dir=out_dir)
    second = save_image(tiny_image("blue"), recipe, output_dir=out_dir)
    start.unlink()
    mask.unlink()  # the originals are gone: the gallery's copies remain
    kept = recipe_from_image_file(second).source
    assert Path(kept.image).parent == out_dir / SOURCES_FOLDER and Path(kept.mask).parent == out_dir / SOURCES_FOLDER
    assert Image.open(kept.image).getpixel((0, 0)) == (0, 128, 0) and Image.open(kept.mask).getpixel((0, 0)) == 255
    assert recipe_from_image_file(first).source == kept  # one copy for both pictures
    assert sorted(p.name for p in (out_dir / SOURCES_FOLDER).iterdir()) == sorted({Path(kept.image).name, Path(kept.mask).name})
    assert sorted(Path(p) for p, _ in scan_images(out_dir)) == sorted([first, second])  # not gallery images
    chunk = json.loads(Image.open(second).info[formats.JSON_KEY])
    assert chunk["recipe"]["source"]["inpaint"]["blur"] == 2 and chunk["recipe"]["source"]["image"] == kept.image


def test_our_own_json_keeps_every_part():
    recipe = inpaint_recipe().with_(hires=None)
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    assert Recipe.from_flat(json.loads(json.dumps(recipe.flat()))) == recipe


def test_a_saved_inpainting_reads_back_exactly(out_dir):
    recipe = inpaint_recipe().with_(batch_size=2)
    path = save_image(tiny_image(), recipe, output_dir=out_dir, index_in_batch=1)
    meta = read_metadata(path)
    assert meta.source == "diffuse-studio" and not meta.errors and not meta.unknown
    own = meta.recipe()
    assert own.output.seed == recipe.output.seed and own.variation.seed == 100  # a variation batch steps its variation seed
    parsed = parse_parameters(Image.open(path).info["parameters"])
    assert split_pairs(meta.parameters.split("\n")[-1])["Variation seed"] == "100"
    assert Recipe.from_flat(parsed.fields).source.inpaint == recipe.source.inpaint
