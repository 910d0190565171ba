"""Image to image and inpainting on tiny real models: the same pixels as diffusers' own pipelines,
the picture kept exactly outside the mask, strength 1 as text to image, and bad files named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from desktop_app.backend.local.errors import InvalidRequest
from desktop_app.backend.local.schedulers import build_scheduler
from desktop_app.backend.local.sources import fill_from_surroundings
from desktop_app.core.recipe import Inpainting, Outpaint, Source
from tests.backend.helpers import CPU, options
from tests.backend.helpers import recipe as request


def picture(size=(64, 64)) -> Image.Image:
    """A light background with a red square and a blue one: something the eye (and a test) can follow."""
    width, height = size
    pixels = np.full((height, width, 3), 230, np.uint8)
    pixels[height // 6:height // 2, width // 6:width // 2] = (200, 30, 30)
    pixels[height // 2 + 3:height - 4, width // 2:width - 8] = (30, 40, 200)
    return Image.fromarray(pixels)


def square_mask(size=(64, 64), box=(8, 8, 32, 32)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


@pytest.fixture
def files(tmp_path):
    init, mask = tmp_path / "init.png", tmp_path / "mask.png"
    picture().save(init)
    square_mask().save(mask)
    return str(init), str(mask)


@pytest.fixture(scope="module")
def tiny_inpainting(tmp_path_factory):
    from desktop_app.backend.local.architectures import build_sd_folder

    return build_sd_folder(tmp_path_factory.mktemp("inpaint") / "tiny-inpaint", name="Tiny inpainting", inpainting=True)


def pixels(result) -> list[np.ndarray]:
    return [np.asarray(image) for image in result.images]


def generators(seed: int, count: int) -> list[torch.Generator]:
    return [torch.Generator("cpu").manual_seed(seed + k) for k in range(count)]


def same(ours, theirs) -> bool:
    return len(ours) == len(theirs) and all(np.array_equal(a, np.asarray(b)) for a, b in zip(ours, theirs, strict=True))


def diffusers_pipeline(engine, model, cls_name: str, scheduler: str):
    import diffusers

    pipe = engine.load(str(model), CPU).pipe
    extra = {"requires_safety_checker": False} if "XL" not in cls_name else {}
    other = getattr(diffusers, cls_name)(**pipe.components, **extra)
    other.set_progress_bar_config(disable=True)
    other.scheduler = build_scheduler(scheduler, engine.model_info(str(model)).scheduler_config)
    return other


@pytest.mark.parametrize("scheduler", ["DDIM", "Euler a", "DPM++ 2M"])
def test_image_to_image_equals_diffusers(engine, tiny_model, files, scheduler):
    init, _ = files
    req = request(tiny_model, scheduler=scheduler, steps=5, batch_size=2, source=Source(init, strength=0.6))
    ours = engine.run(req, CPU)
    pipe = diffusers_pipeline(engine, tiny_model, "StableDiffusionImg2ImgPipeline", scheduler)
    theirs = pipe(req.prompt.text, image=Image.open(init), strength=0.6, num_inference_steps=5, guidance_scale=7.5,
                  num_images_per_prompt=2, generator=generators(1234, 2)).images
    assert same(pixels(ours), theirs)
    assert ours.passes[0]["steps_run"] == 3  # int(5 · 0.6): the last three steps of the five-step schedule


def test_sdxl_image_to_image_equals_diffusers(engine, tiny_xl, tmp_path):
    init = tmp_path / "init.png"
    picture((64, 64)).save(init)
    req = request(tiny_xl, "a red circle", negative_prompt="blue", scheduler="Euler", steps=5, guidance_scale=6.0,
                  seed=3, batch_size=2, width=64, height=64, source=Source(str(init), strength=0.7))
    ours = engine.run(req, CPU)
    pipe = diffusers_pipeline(engine, tiny_xl, "StableDiffusionXLImg2ImgPipeline", "Euler")
    theirs = pipe(req.prompt.text, negative_prompt="blue", image=Image.open(init), strength=0.7, num_inference_steps=5,
                  guidance_scale=6.0, num_images_per_prompt=2, generator=generators(3, 2)).images
    assert same(pixels(ours), theirs)


@pytest.mark.parametrize(("scheduler", "strength"), [("DDIM", 0.75), ("Euler a", 0.75), ("DDIM", 1.0)])
def test_inpainting_any_model_equals_diffusers_blend(engine, tiny_model, files, scheduler, strength):
    """A 4-channel model inpaints by blending the known region back each step, as diffusers does;
    our result is pasted back onto the picture, which is diffusers' own ``apply_overlay``."""
    init, mask = files
    source = Source(init, mask, strength, inpaint=Inpainting(blur=0))
    ours = engine.run(request(tiny_model, scheduler=scheduler, steps=5, batch_size=2, source=source), CPU)
    pipe = diffusers_pipeline(engine, tiny_model, "StableDiffusionInpaintPipeline", scheduler)
    image, mask_image = Image.open(init).convert("RGB"), Image.open(mask)
    theirs = pipe("a red circle on the left", image=image, mask_image=mask_image, strength=strength, height=64, width=64,
                  num_inference_steps=5, guidance_scale=7.5, num_images_per_prompt=2, generator=generators(1234, 2)).images
    assert same(pixels(ours), [pipe.image_processor.apply_overlay(mask_image, image, t) for t in theirs])


def test_sdxl_inpainting_equals_diffusers_blend(engine, tiny_xl, files):
    init, mask = files
    source = Source(init, mask, 0.8, inpaint=Inpainting(blur=0))
    req = request(tiny_xl, "a red circle", negative_prompt="blue", scheduler="Euler", steps=5, guidance_scale=6.0,
                  seed=3, batch_size=2, width=64, height=64, source=source)
    ours = engine.run(req, CPU)
    pipe = diffusers_pipeline(engine, tiny_xl, "StableDiffusionXLInpaintPipeline", "Euler")
    image, mask_image = Image.open(init).convert("RGB"), Image.open(mask)
    theirs = pipe("a red circle", negative_prompt="blue", image=image, mask_image=mask_image, strength=0.8, height=64,
                  width=64, num_inference_steps=5, guidance_scale=6.0, num_images_per_prompt=2,
                  generator=generators(3, 2)).images
    assert same(pixels(ours), [pipe.image_processor.apply_overlay(mask_image, image, t) for t in theirs])


def test_only_masked_area_equals_diffusers_mask_crop(engine, tiny_model, tmp_path):
    """"Only masked": the box around the mask is repainted at the full output size and pasted back
    (diffusers' ``padding_mask_crop``); the picture may be larger than the output."""
    init, mask = tmp_path / "init.png", tmp_path / "mask.png"
    picture((96, 80)).save(init)
    square_mask((96, 80), (40, 30, 60, 50)).save(mask)
    source = Source(str(init), str(mask), 0.8, inpaint=Inpainting(blur=0, area="masked", padding=6))
    ours = engine.run(request(tiny_model, steps=5, source=source), CPU)
    pipe = diffusers_pipeline(engine, tiny_model, "StableDiffusionInpaintPipeline", "DDIM")
    theirs = pipe("a red circle on the left", image=Image.open(init).convert("RGB"), mask_image=Image.open(mask),
                  strength=0.8, height=64, width=64, padding_mask_crop=6, num_inference_steps=5, guidance_scale=7.5,
                  generator=generators(1234, 1)).images
    assert ours.images[0].size == (96, 80)
    assert same(pixels(ours), theirs)


@pytest.mark.parametrize("strength", [1.0, 0.8])
def test_nine_channel_inpainting_model_equals_diffusers(engine, tiny_inpainting, files, strength):
    init, mask = files
    info = engine.model_info(str(tiny_inpainting))
    assert info.kind == "inpaint"
    source = Source(init, mask, strength, inpaint=Inpainting(blur=0))
    ours = engine.run(request(tiny_inpainting, scheduler="Euler a", steps=5, batch_size=2, source=source), CPU)
    pipe = engine.load(str(tiny_inpainting), CPU).pipe
    assert pipe.unet.config.in_channels == 9
    pipe.scheduler = build_scheduler("Euler a", info.scheduler_config)
    image, mask_image = Image.open(init).convert("RGB"), Image.open(mask)
    theirs = pipe("a red circle on the left", image=image, mask_image=mask_image, strength=strength, height=64, width=64,
                  num_inference_steps=5, guidance_scale=7.5, num_images_per_prompt=2, generator=generators(1234, 2)).images
    assert same(pixels(ours), [pipe.image_processor.apply_overlay(mask_image, image, t) for t in theirs])


def test_an_inpainting_model_needs_a_mask(engine, tiny_inpainting, files):
    with pytest.raises(InvalidRequest, match="inpainting model: paint a mask"):
        engine.run(request(tiny_inpainting, source=Source(files[0], strength=0.5)), CPU)
    with pytest.raises(InvalidRequest, match="cannot start a picture from a prompt alone"):
        engine.run(request(tiny_inpainting), CPU)


@pytest.mark.parametrize("area", ["whole", "masked"])
def test_pixels_outside_the_mask_are_exactly_the_pictures(engine, tiny_model, files, area):
    init, mask = files
    blur = 3
    source = Source(init, mask, 0.9, inpaint=Inpainting(blur=blur, area=area, padding=4))
    result = pixels(engine.run(request(tiny_model, steps=4, source=source), CPU))[0]
    original = np.asarray(Image.open(init).convert("RGB"))
    blurred = np.asarray(square_mask().filter(__import__("PIL.ImageFilter").ImageFilter.GaussianBlur(blur)))
    outside = blurred == 0
    assert outside.sum() > 0.5 * outside.size
    assert np.array_equal(result[outside], original[outside])
    inside = np.asarray(square_mask()) == 255
    assert not np.array_equal(result[inside], original[inside])  # and something was repainted


def test_strength_one_is_text_to_image_from_the_same_seed(engine, tiny_model, files):
    plain = pixels(engine.run(request(tiny_model, scheduler="Euler a", batch_size=2), CPU))
    full = pixels(engine.run(request(tiny_model, scheduler="Euler a", batch_size=2, source=Source(files[0], strength=1.0)), CPU))
    assert same(full, plain)


def test_progress_counts_the_steps_that_run(engine, tiny_model, files):
    updates = []
    engine.run(request(tiny_model, steps=10, source=Source(files[0], strength=0.3)), CPU, on_step=updates.append)
    assert [u.step for u in updates] == [1, 2, 3] and {u.total for u in updates} == {3}


def test_a_strength_that_leaves_no_step_is_refused(engine, tiny_model, files):
    with pytest.raises(InvalidRequest, match="leaves no step to run"):
        engine.run(request(tiny_model, steps=4, source=Source(files[0], strength=0.1)), CPU)


def test_masked_content_changes_where_the_masked_area_starts(engine, tiny_model, files):
    init, mask = files
    runs = {content: pixels(engine.run(request(tiny_model, steps=5, source=Source(
        init, mask, 0.6, inpaint=Inpainting(blur=0, content=content))), CPU))[0] for content in ("original", "noise", "fill")}
    inside = np.asarray(square_mask()) == 255
    assert not np.array_equal(runs["original"][inside], runs["noise"][inside])
    assert not np.array_equal(runs["original"][inside], runs["fill"][inside])
    assert np.array_equal(runs["noise"][~inside], runs["fill"][~inside])  # outside, every run keeps the picture


def test_fill_paints_the_masked_area_with_the_colours_around_it():
    half = Image.new("RGB", (40, 20), (200, 0, 0))
    half.paste((0, 0, 200), (20, 0, 40, 20))
    mask = square_mask((40, 20), (16, 0, 24, 20))
    filled = np.asarray(fill_from_surroundings(half, mask)).astype(int)
    assert np.array_equal(filled[:, :16], np.asarray(half)[:, :16])  # the known pixels stay
    assert filled[10, 16, 0] > filled[10, 16, 2] and filled[10, 23, 2] > filled[10, 23, 0]  # red side red, blue side blue


def test_outpainting_extends_the_canvas_and_keeps_the_picture(engine, tiny_model, tmp_path):
    init = tmp_path / "narrow.png"
    picture((48, 64)).save(init)
    source = Source(str(init), strength=1.0, outpaint=Outpaint(left=16), inpaint=Inpainting(blur=0, content="fill"))
    result = pixels(engine.run(request(tiny_model, steps=4, source=source), CPU))[0]
    assert result.shape == (64, 64, 3)
    assert np.array_equal(result[:, 16:], np.asarray(Image.open(init)))  # the old picture, moved right, exactly
    assert result[:, :16].std() > 1  # the new strip was painted


@pytest.mark.parametrize(("path", "content", "message"), [
    ("missing.png", None, "does not exist"),
    ("notes.png", b"not an image at all", "is not an image this app can read"),
    ("blank-mask.png", "black", "the mask is empty"),
])
def test_bad_source_files_are_named(engine, tiny_model, files, tmp_path, path, content, message):
    bad = tmp_path / path
    if content == "black":
        Image.new("L", (64, 64), 0).save(bad)
    elif content is not None:
        bad.write_bytes(content)
    source = Source(files[0], str(bad), 0.7) if "mask" in path else Source(str(bad), strength=0.7)
    with pytest.raises(InvalidRequest, match=message) as caught:
        engine.run(request(tiny_model, source=source), CPU)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)


def test_the_built_in_model_changes_a_colour_and_moves_a_shape(engine, tmp_path):
    """What "Getting started" suggests, on Shapes: image to image turns the red circle blue; inpainting
    over the circle and the place it should go moves it to the right."""
    from desktop_app.backend.local.discovery import discover
    from desktop_app.core.recipe import Recipe

    if not any(m.id == "shapes" for m in discover().models):
        pytest.skip("the built-in model is not in models/")

    def run(prompt: str, source=None) -> np.ndarray:
        recipe = Recipe.of(prompt, model_id="shapes", scheduler="DDIM", steps=20, guidance_scale=5.0, seed=7, source=source)
        return pixels(engine.run(recipe, CPU))[0].astype(int)

    def mean(area: np.ndarray) -> np.ndarray:
        return area.reshape(-1, 3).mean(0)

    red = run("a big red circle in the centre")
    Image.fromarray(red.astype(np.uint8)).save(tmp_path / "red.png")
    centre = (slice(24, 40), slice(24, 40))
    assert mean(red[centre])[0] > 150 > mean(red[centre])[2]
    blue = run("a big blue circle in the centre", Source(str(tmp_path / "red.png"), strength=0.6))
    assert mean(blue[centre])[2] > 150 > mean(blue[centre])[0]
    square_mask((64, 64), (14, 14, 64, 50)).save(tmp_path / "mask.png")
    moved = run("a big red circle on the right", Source(str(tmp_path / "red.png"), str(tmp_path / "mask.png"), 1.0))
    right = (slice(26, 38), slice(46, 58))
    assert mean(moved[right])[0] > 150 > mean(moved[right])[2]
    assert abs(mean(moved[centre]) - 128).max() < 30  # the old place is background now


def test_previews_form_from_the_init_picture(engine, tmp_path):
    """The first x̂₀ preview of image to image shows the init picture (a red circle on the left),
    not what the prompt alone would start from (text to image's first preview: red on the right)."""
    from desktop_app.backend.local.discovery import discover
    from desktop_app.core.recipe import Recipe

    if not any(m.id == "shapes" for m in discover().models):
        pytest.skip("the built-in model is not in models/")
    recipe = Recipe.of("a big red circle on the left", model_id="shapes", scheduler="DDIM", steps=20, seed=7)
    engine.run(recipe, CPU).images[0].save(tmp_path / "left.png")

    def redness(source) -> tuple[float, float]:
        """How much redder than blue the first preview's left and right thirds are."""
        first = next(engine.generate(recipe.with_(prompt="a big red circle on the right", source=source),
                                     options(preview="latent"), max_fps=0)).preview.astype(int)
        third = first.shape[1] // 3
        return tuple(float(part[..., 0].mean() - part[..., 2].mean()) for part in (first[:, :third], first[:, -third:]))

    left, right = redness(Source(str(tmp_path / "left.png"), strength=0.3))
    assert left > right + 25
    left, right = redness(None)
    assert right > left + 25
