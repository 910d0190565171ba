"""The one place images are saved.

``save_image`` writes a PNG into a date folder below the output folder, atomically: the bytes go to
a temporary file in the same folder, are flushed to the disk (fsync) and only then get their real
name, so a crash, a kill or a full disk never leaves a half-written image under a real name. The
PNG carries the recipe twice (see ``desktop_app.gallery.metadata``), and the image is added to the
gallery index when there is one; an indexing failure never loses the file (the next scan finds it).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import tempfile
import threading
from datetime import datetime
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from desktop_app import __version__
from desktop_app.core import paths
from desktop_app.gallery.a1111 import format_parameters
from desktop_app.gallery.filenames import prompt_slug, safe_filename

if TYPE_CHECKING:
    from desktop_app.engine.models import ModelInfo
    from desktop_app.engine.request import GenerationRequest

log = logging.getLogger(__name__)

JSON_KEY = "diffuse_studio"  # PNG text chunk with this app's exact recipe
PARAMETERS_KEY = "parameters"  # PNG text chunk in AUTOMATIC1111's format
TEMP_PREFIX = ".tmp-"  # unfinished saves; never indexed, removed by the next scan
FORMAT_VERSION = 1
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


# ---------------------------------------------------------------------------------------------
# Model hash: the first 10 hex digits of the SHA-256 of the UNet weights, cached in memory and on
# disk (hashing a 3 GB file takes seconds), keyed by the file's path, size and modification time.

_hash_lock = threading.Lock()
_hash_memory: dict[str, str] = {}


def _weights_file(model: ModelInfo) -> Path | None:
    unet = Path(model.path) / "unet"
    files = sorted(unet.glob("*.safetensors")) or sorted(unet.glob("*.bin"))
    if not files:
        path = Path(model.path)
        return path if path.is_file() else None  # a single-file checkpoint
    return files[0]


def model_hash(model: ModelInfo | None) -> str:
    """The A1111-style "Model hash" of ``model`` ("" when it has no weights file to hash)."""
    if model is None:
        return ""
    weights = _weights_file(model)
    if weights is None:
        return ""
    try:
        stat = weights.stat()
    except OSError:
        return ""
    key = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    with _hash_lock:
        if key in _hash_memory:
            return _hash_memory[key]
        cache_file = paths.cache_dir() / "model_hashes.json"
        try:
            disk = json.loads(cache_file.read_text(encoding="utf-8"))
            disk = disk if isinstance(disk, dict) else {}
        except (OSError, ValueError):
            disk = {}
        if key not in disk:
            digest = hashlib.sha256()
            with weights.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            disk[key] = digest.hexdigest()[:10]
            try:
                cache_file.write_text(json.dumps(disk, indent=0), encoding="utf-8")
            except OSError as exc:
                log.warning("could not write the model hash cache %s: %s", cache_file, exc)
        _hash_memory[key] = disk[key]
        return disk[key]


# ---------------------------------------------------------------------------------------------


def image_request(request: GenerationRequest, index_in_batch: int) -> GenerationRequest:
    """The recipe of one image of a batch: its own seed (the batch's seed + k), batch size 1."""
    seed = None if request.seed is None else request.seed + index_in_batch
    return request.replace(seed=seed, batch_size=1)


def build_metadata(
    image: Image.Image,
    request: GenerationRequest,
    *,
    model: ModelInfo | None,
    index_in_batch: int = 0,
    extra: dict[str, Any] | None = None,
    created: datetime | None = None,
) -> dict[str, str]:
    """The text chunks for one image: ``parameters`` (A1111) and ``diffuse_studio`` (JSON)."""
    created = created or datetime.now().astimezone()
    own = image_request(request, index_in_batch)
    digest = model_hash(model)
    found = versions()
    width, height = image.size
    parameters = format_parameters(
        own,
        width=width,
        height=height,
        model_hash=digest,
        model_name=request.model_id,
        version=f"Diffuse Studio {found['app']}",
    )
    recipe = {
        "format": FORMAT_VERSION,
        "request": request.to_dict(),
        "batch_index": index_in_batch,
        "seed": own.seed,
        "width": width,
        "height": height,
        "model": {
            "id": model.id if model is not None else request.model_id,
            "name": model.name if model is not None else "",
            "family": model.family if model is not None else "",
            "hash": digest,
        },
        "versions": found,
        "created": created.isoformat(timespec="microseconds"),
        "extra": extra or {},
    }
    return {PARAMETERS_KEY: parameters, JSON_KEY: json.dumps(recipe, ensure_ascii=True, default=str)}


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
        raise _save_error(exc, folder) from exc
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
            raise _save_error(exc, folder) from exc
        raise
    _fsync_dir(folder)
    return final


def _save_error(exc: OSError, folder: Path) -> SaveError:
    if exc.errno in _NO_SPACE:
        return DiskFullError(
            errno.ENOSPC,
            f"The disk holding {folder} is full, so the image was not saved. "
            "Free some space, or choose another output folder in Settings, and generate again.",
            str(folder),
        )
    reason = exc.strerror or str(exc)
    return SaveError(exc.errno, f"The image could not be saved in {folder}: {reason}.", str(folder))


def image_file_name(request: GenerationRequest, index_in_batch: int, when: datetime) -> str:
    seed = "" if request.seed is None else f"-{request.seed + index_in_batch}"
    return safe_filename(f"{when:%H%M%S}{seed}-{prompt_slug(request.prompt)}", ".png")


def save_image(
    image: Image.Image,
    request: GenerationRequest,
    *,
    model: ModelInfo | None,
    output_dir: Path,
    index_in_batch: int = 0,
    extra: dict[str, Any] | None = None,
    dated: bool = True,
) -> Path:
    """Save image ``index_in_batch`` of the batch ``request`` made; returns its path.

    The file goes into a ``YYYY-MM-DD`` subfolder of ``output_dir`` (the app's pictures folder),
    or, with ``dated=False``, into ``output_dir`` itself (the command line's ``--out``).

    ``request`` is the fully resolved request of the batch (seed filled in); image k's own seed is
    ``request.seed + k``. ``extra`` (device, dtype, timings…) goes into the JSON recipe.
    Raises ``DiskFullError`` / ``SaveError`` (both ``OSError``) with a message for the user.
    """
    when = datetime.now().astimezone()
    chunks = build_metadata(image, request, model=model, index_in_batch=index_in_batch, extra=extra, created=when)
    data = encode_png(image, chunks)
    folder = Path(output_dir) / f"{when:%Y-%m-%d}" if dated else Path(output_dir)
    path = write_atomically(data, folder, image_file_name(request, index_in_batch, when))
    _index_if_present(path, Path(output_dir))
    return path


def _index_if_present(path: Path, root: Path) -> None:
    try:
        from desktop_app.gallery.store import add_to_default_index

        add_to_default_index(path, root)
    except Exception:  # the file is saved; the next scan will index it
        log.exception("could not add %s to the gallery index", path)
