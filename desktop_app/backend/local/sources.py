"""The source pictures of a job, read from their files and shaped for the pass that uses them.

Image to image needs the init picture at the output size; inpainting also the mask (white:
repaint), blurred at its edge, and what the result is pasted back onto. The geometry follows
diffusers' image processors (the same resize modes, crop box and overlay), so a job gives the same
pixels as diffusers' img2img and inpaint pipelines:

1. the init picture (EXIF orientation applied, transparency flattened onto white) and the mask
   (its alpha channel where it has one, else its grey levels) at the picture's size;
2. outpaint margins: the canvas grows, the new area joins the mask, and its pixels are filled
   from the picture's edge;
3. the mask is blurred (Gaussian, ``Inpainting.blur`` pixels);
4. area "whole": picture and mask are fitted to the output size (resize / crop / fill);
   area "masked": the box around the mask (plus padding, grown to the output's aspect ratio) is
   cut out and fitted to the output size, and the result goes back into that box;
5. masked content "fill": the masked area is painted with the colours around it before encoding.

Every file problem is an ``InvalidRequest`` whose message names the file and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from desktop_app.backend.local.errors import InvalidRequest
from desktop_app.core.recipe import Problem, Source

RESIZE_MODES = {"resize": "default", "crop": "crop", "fill": "fill"}  # ours -> diffusers' resize_mode
MAX_PIXELS = 64_000_000  # a larger file is a decompression bomb, not a picture to start from


@dataclass
class SourcePictures:
    """The source at the processing size, and what the result is pasted back onto."""

    image: Image.Image  # RGB at the output size: what is encoded
    mask: Image.Image | None  # L at the output size, blurred (the pipeline binarises it); None: image to image
    base: Image.Image  # RGB: the picture the result is pasted onto (its size is the result's)
    base_mask: Image.Image | None  # L at the base's size: where the result shows through
    crop: tuple[int, int, int, int] | None = None  # area "masked": the base's box that was repainted

    def paste_back(self, processor, generated: list[Image.Image]) -> list[Image.Image]:
        """The generated pictures inside the mask, the source's own pixels everywhere else."""
        if self.base_mask is None:
            return generated
        return [processor.apply_overlay(self.base_mask, self.base, image, self.crop) for image in generated]


def read_picture(path: str, what: str, field: str) -> Image.Image:
    """An image file, opened and fully read; problems name the file."""
    file = Path(path).expanduser()
    try:
        with Image.open(file) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise InvalidRequest([Problem(field, f"{file}: the {what} is {opened.width}×{opened.height} pixels, "
                                                     "too large; scale it down first")])
            opened.load()
            picture = ImageOps.exif_transpose(opened)
    except FileNotFoundError:
        raise InvalidRequest([Problem(field, f"{file}: the {what} does not exist; check the path")]) from None
    except IsADirectoryError:
        raise InvalidRequest([Problem(field, f"{file}: the {what} is a folder, not an image file")]) from None
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        raise InvalidRequest([Problem(field, f"{file}: the {what} is not an image this app can read "
                                             f"(PNG, JPEG or WebP) ({exc})")]) from None
    except OSError as exc:
        raise InvalidRequest([Problem(field, f"{file}: the {what} could not be read "
                                             f"({exc.strerror or exc}); is the file complete?")]) from None
    return picture


def as_rgb(picture: Image.Image) -> Image.Image:
    """RGB, with any transparency flattened onto white."""
    if "A" in picture.getbands() or picture.mode == "P" and "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    return picture.convert("RGB")


def as_mask(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A mask as L (255: repaint): the alpha channel of a partly transparent picture, else its grey levels."""
    if "A" in picture.getbands():
        alpha = picture.getchannel("A")
        mask = alpha if alpha.getextrema() != (255, 255) else picture.convert("L")
    else:
        mask = picture.convert("L")
    return mask if mask.size == size else mask.resize(size, Image.Resampling.BILINEAR)


def fill_from_surroundings(picture: Image.Image, mask: Image.Image) -> Image.Image:
    """The masked area painted with the colours around it: the known pixels, blurred with their
    weights at shrinking radii (premultiplied alpha does the weighting), each finer layer over the
    coarser ones, and the known pixels themselves on top."""
    known = mask.point(lambda v: 0 if v >= 128 else 255)
    weighted = Image.new("RGBa", picture.size)
    weighted.paste(picture.convert("RGBA").convert("RGBa"), mask=known)
    filled = Image.new("RGBA", picture.size, (127, 127, 127, 255))
    for radius in (128, 32, 8, 2):
        filled.alpha_composite(weighted.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA"))
    filled.paste(picture.convert("RGBA"), mask=known)
    return filled.convert("RGB")


def extend(picture: Image.Image, mask: Image.Image | None, source: Source) -> tuple[Image.Image, Image.Image]:
    """The picture on a canvas grown by the outpaint margins, the new area masked and filled."""
    margins = source.outpaint
    size = margins.extended(*picture.size)
    canvas = Image.new("RGB", size)
    canvas.paste(picture, (margins.left, margins.top))
    grown = Image.new("L", size, 255)
    grown.paste(mask if mask is not None else Image.new("L", picture.size, 0), (margins.left, margins.top))
    return fill_from_surroundings(canvas, grown), grown


def load_source(source: Source, size: tuple[int, int], processor, mask_processor) -> SourcePictures:
    """The source's pictures for a pass of ``size`` (width, height); raises InvalidRequest."""
    picture = as_rgb(read_picture(source.image, "init image", "source.image"))
    mask = None
    if source.mask:
        mask = as_mask(read_picture(source.mask, "mask", "source.mask"), picture.size)
    if source.outpaint.any:
        picture, mask = extend(picture, mask, source)
    width, height = size
    if mask is None:
        fitted = processor.resize(picture, height, width, resize_mode=RESIZE_MODES[source.fit])
        return SourcePictures(fitted, None, fitted, None)
    if mask.getextrema()[1] == 0:
        raise InvalidRequest([Problem("source.mask", f"{source.mask}: the mask is empty (all black); paint the area "
                                                     "to repaint in white")])
    options = source.inpaint
    if options.blur:
        mask = mask.filter(ImageFilter.GaussianBlur(options.blur))
    if options.area == "masked":
        crop = mask_processor.get_crop_region(mask, width, height, pad=options.padding)
        image = processor.resize(picture.crop(crop), height, width, resize_mode="fill")
        work_mask = mask_processor.resize(mask.crop(crop), height, width, resize_mode="fill")
        base, base_mask = picture, mask
    else:
        crop = None
        mode = RESIZE_MODES[source.fit]
        image = processor.resize(picture, height, width, resize_mode=mode)
        work_mask = mask_processor.resize(mask, height, width, resize_mode=mode)
        base, base_mask = image, work_mask
    if options.content == "fill":
        image = fill_from_surroundings(image, work_mask)
    return SourcePictures(image, work_mask, base, base_mask, crop)


def binary_mask(mask: Image.Image) -> np.ndarray:
    """(H, W) bool: where the mask says repaint (diffusers binarises at one half)."""
    return np.asarray(mask.convert("L")) >= 128
