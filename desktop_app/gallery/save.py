"""Writing an image file with its recipe, atomically. No index here: ``library.Library`` adds the row.

The bytes go to a temporary file in the target folder, are flushed to the disk (fsync) and only
then get their real name, which never replaces another file (``core.files``), so a crash, a
kill, a full disk or a second process saving the same name never costs an image. The PNG
carries the recipe twice: a ``parameters`` text in AUTOMATIC1111's format (other tools and image
sites read it) and a JSON chunk with the exact recipe, how it ran and the versions (format 2;
see ``metadata`` for reading both formats back).
"""

from __future__ import annotations

import errno
import io
import json
import os
from datetime import datetime
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from desktop_app import __version__
from desktop_app.core.events import GeneratedImage
from desktop_app.core.files import create_temp, write_new
from desktop_app.core.recipe import Recipe
from desktop_app.gallery.a1111 import format_parameters
from desktop_app.gallery.filenames import prompt_slug, safe_filename
from desktop_app.gallery.formats import FORMAT_VERSION, JSON_KEY, PARAMETERS_KEY, TEMP_PREFIX  # noqa: F401 - for callers

_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class SaveError(OSError):
    """An image could not be saved; the message says why and what to do. No file was left behind.
    ``problem`` is the why alone, for a front end that words the what-to-do itself."""

    problem: str = ""


class DiskFullError(SaveError):
    """The disk (or the user's quota) is full."""


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """The app's and the libraries' versions, without importing torch or diffusers."""
    found = {"app": __version__}
    for name in ("torch", "diffusers", "transformers"):
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = ""
    return found


def build_metadata(item: GeneratedImage, *, created: datetime | None = None) -> dict[str, str]:
    """The text chunks for one image: ``parameters`` (A1111), ``diffuse_studio`` (JSON), and any
    chunks the backend brought (a ComfyUI server's ``prompt`` graph)."""
    created = created or datetime.now().astimezone()
    own = item.recipe.for_image(item.index)
    width, height = item.image.size
    model = item.model
    # A1111's "Size" is the size the model ran at: a hires fix's first pass, the output of an "only
    # masked" inpaint (whose picture is the source's size)
    size = (own.output.width, own.output.height) if own.output.width and own.output.height else (width, height)
    parameters = format_parameters(own, width=size[0], height=size[1], model_hash=item.model_hash,
                                   model_name=item.recipe.model.id, version=f"Diffuse Studio {versions()['app']}",
                                   lora_hashes=item.lora_hashes, ti_hashes=item.ti_hashes)
    chunk = {
        "format": FORMAT_VERSION,
        "recipe": item.recipe.to_dict(),
        "batch_index": item.index,
        "seed": own.output.seed,
        "width": width,
        "height": height,
        "model": {
            "id": model.id if model is not None else item.recipe.model.id,
            "name": model.name if model is not None else "",
            "family": model.family if model is not None else "",
            "hash": item.model_hash,
            **({"lora_hashes": dict(item.lora_hashes)} if item.lora_hashes else {}),
            **({"ti_hashes": dict(item.ti_hashes)} if item.ti_hashes else {}),
        },
        "run": item.run,
        "versions": versions(),
        "created": created.isoformat(timespec="microseconds"),
    }
    chunks = {k: v for k, v in item.extra_chunks.items() if k not in (PARAMETERS_KEY, JSON_KEY)}
    chunks[PARAMETERS_KEY] = parameters
    chunks[JSON_KEY] = json.dumps(chunk, ensure_ascii=True, default=str)
    return chunks


def encode_png(image: Image.Image, chunks: dict[str, str]) -> bytes:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)  # tEXt when Latin-1 can hold it, else iTXt (UTF-8)
    if image.mode not in ("RGB", "RGBA", "L", "LA", "I;16"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


def write_atomically(data: bytes, folder: Path, name: str) -> Path:
    """Write ``data`` as ``folder/name`` (or ``name-2``…): all of it, or nothing at all, never over
    another file, with the permissions the user's umask gives (see ``core.files``)."""
    try:
        return write_new(data, folder, name)
    except OSError as exc:
        raise save_error(exc, folder) from exc


def _error(number: int | None, problem: str, advice: str, folder: Path, kind: type[SaveError] = SaveError) -> SaveError:
    error = kind(number, f"{problem[:1].upper()}{problem[1:]}.{' ' + advice if advice else ''}", str(folder))
    error.problem = problem
    return error


def save_error(exc: OSError, folder: Path) -> SaveError:
    """The user's error for an image that could not be written into ``folder``: ``problem`` says
    what happened, the message adds what to do (a front end with its own controls, like the
    command line's --out, may say that in its own words instead)."""
    if isinstance(exc, SaveError):
        return exc
    if exc.errno in _NO_SPACE:
        return _error(errno.ENOSPC, f"the disk holding {folder} is full, so the image was not saved",
                      "Free some space, or choose another output folder, and generate again.", folder, DiskFullError)
    return _error(exc.errno, f"the image could not be saved in {folder}: {exc.strerror or exc}", "", folder)


def check_output_folder(folder: Path) -> None:
    """Make sure images can be written into ``folder`` (creating it) before any is made; raises
    ``SaveError`` saying what is wrong (a file in the way, no permission, a read-only disk)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise _error(errno.ENOTDIR, f"the output folder {folder} is a file, not a folder", "", folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "a part of its path is a file" if isinstance(exc, (FileExistsError, NotADirectoryError)) else \
            exc.strerror or str(exc)
        raise _error(exc.errno, f"the output folder {folder} cannot be created ({reason})", "", folder) from exc
    try:
        fd, probe = create_temp(folder, ".probe")
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise _error(exc.errno, f"the output folder {folder} cannot be written ({exc.strerror or exc})", "",
                     folder) from exc


def image_file_name(recipe: Recipe, index_in_batch: int, when: datetime) -> str:
    seed = "" if recipe.output.seed is None else f"-{recipe.output.seed + index_in_batch}"
    return safe_filename(f"{when:%H%M%S}{seed}-{prompt_slug(recipe.prompt.text)}", ".png")


def save_png(item: GeneratedImage, folder: Path, *, when: datetime | None = None) -> tuple[Path, dict[str, str]]:
    """Write one image with its metadata into ``folder``; returns its path and the chunks written.

    Raises ``DiskFullError`` / ``SaveError`` (both ``OSError``) with a message for the user.
    """
    when = when or datetime.now().astimezone()
    chunks = build_metadata(item, created=when)
    path = write_atomically(encode_png(item.image, chunks), Path(folder), image_file_name(item.recipe, item.index, when))
    return path, chunks
