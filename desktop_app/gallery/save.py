"""Writing an image file with its recipe, atomically. No index here: ``library.Library`` adds the row.

The bytes go to a temporary file in the target folder, are flushed to the disk (fsync) and only
then get their real name, so a crash, a kill or a full disk never leaves a half-written image
under a real name. The PNG carries the recipe twice: a ``parameters`` text in AUTOMATIC1111's
format (other tools and image sites read it) and a JSON chunk with the exact recipe, how it ran
and the versions (format 2; see ``metadata`` for reading both formats back).
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
from datetime import datetime
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from desktop_app import __version__
from desktop_app.core.events import GeneratedImage
from desktop_app.core.recipe import Recipe
from desktop_app.gallery.a1111 import format_parameters
from desktop_app.gallery.filenames import prompt_slug, safe_filename
from desktop_app.gallery.formats import FORMAT_VERSION, JSON_KEY, PARAMETERS_KEY, TEMP_PREFIX

_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class SaveError(OSError):
    """An image could not be saved; the message says why and what to do. No file was left behind."""


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
                                   model_name=item.recipe.model.id, version=f"Diffuse Studio {versions()['app']}")
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


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish(temp: Path, folder: Path, name: str) -> Path:
    """Give the finished temporary file its real name, never overwriting an existing file."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, 10_000):
        final = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
        try:
            os.link(temp, final)  # atomic, and fails instead of overwriting
        except FileExistsError:
            continue
        except OSError:  # no hard links here (FAT, some network drives): check, then rename
            if final.exists():
                continue
            os.replace(temp, final)
            return final
        os.unlink(temp)
        return final
    raise SaveError(errno.EEXIST, f"too many images called {name!r} in {folder}", str(folder))


def write_atomically(data: bytes, folder: Path, name: str) -> Path:
    """Write ``data`` as ``folder/name`` (or ``name-2``…): all of it, or nothing at all."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=Path(name).suffix, dir=folder)
    except OSError as exc:
        raise save_error(exc, folder) from exc
    temp = Path(temp_name)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        final = _publish(temp, folder, name)
    except BaseException as exc:  # also KeyboardInterrupt: never leave the temporary file
        try:
            temp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, SaveError):
            raise save_error(exc, folder) from exc
        raise
    _fsync_dir(folder)
    return final


def save_error(exc: OSError, folder: Path) -> SaveError:
    if exc.errno in _NO_SPACE:
        return DiskFullError(
            errno.ENOSPC,
            f"The disk holding {folder} is full, so the image was not saved. "
            "Free some space, or choose another output folder, and generate again.",
            str(folder),
        )
    reason = exc.strerror or str(exc)
    return SaveError(exc.errno, f"The image could not be saved in {folder}: {reason}.", str(folder))


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
