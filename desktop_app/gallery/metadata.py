"""Reading an image's recipe back, whoever made it.

Sources, tried in this order: this app's JSON chunk (exact), then the other tools' formats, most
specific first (``desktop_app.gallery.readers``: InvokeAI 3+, 2.x ``sd-metadata`` and ``Dream``,
NovelAI, SwarmUI, Fooocus, ComfyUI's ``prompt`` graph), and last the AUTOMATIC1111 ``parameters``
text. Text chunks come from PNG text chunks or, in JPEG/WebP, from EXIF (UserComment, MakerNote,
Software) and the JPEG comment. Only when none of them gives settings are the pixels searched for
settings hidden in their lowest bits (``stealth.py``). The result is the image's own recipe in
the flat form (``Recipe.from_flat`` reads it), plus what was present but could not be used (``unknown``:
for other tools' images, plain sentences saying what has no control here) and what was wrong
(``errors``). Garbled input is reported, never raised: ``read_metadata`` never raises, and ``recipe_from_image_file`` raises ``MetadataError`` with a
message for the user.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from desktop_app.core.recipe import RECIPE_NAMES, Recipe
from desktop_app.gallery import readers, stealth
from desktop_app.gallery.a1111 import parse_parameters
from desktop_app.gallery.formats import JSON_KEY, PARAMETERS_KEY

if TYPE_CHECKING:
    from desktop_app.core.models import ModelInfo

log = logging.getLogger(__name__)

EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
MAKER_NOTE = 0x927C  # Fooocus writes its metadata scheme here
SOFTWARE = 0x0131
MAX_CHUNK_CHARS = 8 << 20  # a settings chunk is KiB, a ComfyUI graph rarely 1 MiB; longer ones are not parsed


class MetadataError(ValueError):
    """An image whose settings cannot be restored; the message says why."""


@dataclass
class ImageMetadata:
    source: str = "none"  # "diffuse-studio", a key of readers.SOURCE_NAMES ("a1111", "comfyui"…) or "none"
    request: dict[str, Any] = field(default_factory=dict)  # this image's own recipe, flat (its seed, batch 1)
    unknown: dict[str, Any] = field(default_factory=dict)  # present, but no control to put it in
    errors: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # model hash/name, versions, batch…
    parameters: str = ""  # the A1111 text as stored (for "copy parameters")
    width: int = 0
    height: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.request.get("prompt") is not None and self.source != "none")

    def recipe(self) -> Recipe:
        """The image's own recipe; raises ``RecipeError`` when what was read is not enough for one."""
        return Recipe.from_flat(self.request)


def decode_user_comment(raw: Any) -> str:
    """An EXIF UserComment: an 8-byte character-code header, then the text."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, (bytes, bytearray)):
        return ""
    raw = bytes(raw)
    header, body = raw[:8], raw[8:]
    if header.startswith(b"UNICODE"):
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return body.decode("utf-16", errors="replace")
        if b"\x00" not in body:  # UTF-8 under a UNICODE header (some writers); real UTF-16 text has NULs
            return body.decode("utf-8", errors="replace")
        big = body.decode("utf-16-be", errors="replace")
        little = body.decode("utf-16-le", errors="replace")
        # ASCII text in the wrong byte order turns into CJK-range characters; pick the plainer one
        return big if sum(c < "\u0100" for c in big) >= sum(c < "\u0100" for c in little) else little
    if header.startswith(b"ASCII") or header == b"\x00" * 8:
        return body.decode("utf-8", errors="replace").rstrip("\x00")
    return raw.decode("utf-8", errors="replace").rstrip("\x00")


def encode_user_comment(text: str) -> bytes:
    return b"UNICODE\x00" + text.encode("utf-16-be")


def _repair_utf8(text: str) -> str:
    """tEXt is Latin-1, but some tools write UTF-8 bytes into it: undo the mojibake ("Ã©" → "é")."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def text_chunks(image: Image.Image) -> dict[str, str]:
    """Text metadata of an opened image: PNG text chunks; from EXIF the UserComment as ``parameters``
    (in the Exif IFD, or in IFD0 where Fooocus puts it), MakerNote as ``fooocus_scheme`` and Software;
    a JPEG comment holding A1111 text as ``parameters``. A chunk's own value wins over EXIF's."""
    chunks = {
        k: v if isinstance(v, PngImagePlugin.iTXt) else _repair_utf8(v)
        for k, v in image.info.items()
        if isinstance(k, str) and isinstance(v, str)
    }
    exif: Any = {}
    ifd: Any = {}
    # a PNG's eXIf chunk after the pixels is only found by decoding them all: not worth it here
    if image.format != "PNG" or "exif" in image.info:
        try:
            exif = image.getexif()
            ifd = exif.get_ifd(EXIF_IFD)
        except Exception:  # a broken EXIF block is just "no metadata"
            exif, ifd = {}, {}
    comment = ifd.get(USER_COMMENT) or exif.get(USER_COMMENT)
    if comment and PARAMETERS_KEY not in chunks:
        chunks[PARAMETERS_KEY] = decode_user_comment(comment)
    scheme = decode_user_comment(ifd.get(MAKER_NOTE) or exif.get(MAKER_NOTE) or b"").strip("\x00 ")
    if scheme in ("fooocus", "a1111"):
        chunks.setdefault("fooocus_scheme", scheme)
    if isinstance(exif.get(SOFTWARE), str):
        chunks.setdefault("Software", exif[SOFTWARE].strip("\x00"))
    jpeg_comment = image.info.get("comment")
    if PARAMETERS_KEY not in chunks and isinstance(jpeg_comment, bytes) and b"Steps: " in jpeg_comment:
        chunks[PARAMETERS_KEY] = jpeg_comment.decode("utf-8", errors="replace")
    return chunks


def read_metadata(source: Path | str | Image.Image) -> ImageMetadata:
    """The recipe stored in an image file or an opened image."""
    if isinstance(source, Image.Image):
        return _metadata_of(source)
    try:
        with Image.open(source) as image:
            return _metadata_of(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        result = ImageMetadata()
        if "MAX_TEXT" in str(exc):  # Pillow refuses text chunks that inflate beyond its limits
            result.errors.append(f"{Path(source).name} holds a text chunk too large to read safely, so its "
                                 f"settings could not be read ({exc})")
        else:
            result.errors.append(f"{Path(source).name} could not be read as an image ({exc})")
        return result


def _metadata_of(image: Image.Image) -> ImageMetadata:
    found = metadata_from_chunks(text_chunks(image), image.size)
    if found.source != "none" and not (found.source == "a1111" and "steps" not in found.request):
        return found  # settings from a text chunk; an A1111 text with no settings line is only a prompt
    hidden = stealth.read_hidden_text(image)
    if hidden is None or hidden.text is None:
        found.errors.extend(hidden.errors if hidden is not None else [])
        return found
    result = metadata_from_chunks(stealth.as_chunks(hidden.text), image.size)
    if result.source == "none":
        found.errors.extend([*hidden.errors, *(f"hidden settings: {e}" for e in result.errors)])
        return found
    result.errors[:0] = hidden.errors
    result.info["hidden_in"] = hidden.where
    return result


# This app's own JSON first, then the other tools' formats (most specific first), A1111 text last.
_READERS = (
    (JSON_KEY, lambda chunks, result: _read_own(chunks[JSON_KEY], result)),
    *readers.FOREIGN_READERS,
    (PARAMETERS_KEY, lambda chunks, result: _read_a1111(chunks[PARAMETERS_KEY], result)),
)


def metadata_from_chunks(chunks: dict[str, str], size: tuple[int, int] = (0, 0)) -> ImageMetadata:
    """Each reader whose chunk is there gets a fresh result; the first that claims the image wins,
    and every reader's errors before it are kept."""
    errors: list[str] = []
    for key, reader in _READERS:
        if key not in chunks:
            continue
        if len(chunks[key]) > MAX_CHUNK_CHARS:
            errors.append(f"the {key!r} metadata is {len(chunks[key]):,} characters long, too long for "
                          f"settings; it was not read")
            continue
        attempt = ImageMetadata(width=size[0], height=size[1], parameters=chunks.get(PARAMETERS_KEY, ""))
        try:
            reader(chunks, attempt)
        except Exception as exc:  # garbled data must never take the app down
            log.debug("reading %s metadata failed", key, exc_info=True)
            errors.append(f"the {key!r} metadata could not be read ({type(exc).__name__}: {exc})")
            continue
        errors.extend(attempt.errors)
        if attempt.source != "none":
            attempt.errors = errors
            _fill_size(attempt)
            return attempt
    result = ImageMetadata(width=size[0], height=size[1], parameters=chunks.get(PARAMETERS_KEY, ""))
    result.errors = errors
    if not result.errors:
        result.errors.append("the image carries no generation settings")
    return result


def _fill_size(result: ImageMetadata) -> None:
    if result.width and result.height:
        result.request.setdefault("width", result.width)
        result.request.setdefault("height", result.height)
    unknown_fields = {k: v for k, v in result.request.items() if k not in RECIPE_NAMES}
    for key, value in unknown_fields.items():
        result.request.pop(key)
        result.unknown[key] = value


def _read_own(text: str, result: ImageMetadata) -> None:
    chunk = json.loads(text)
    if not isinstance(chunk, dict):
        raise ValueError("the recipe is not a JSON object")
    if chunk.get("format") == 1 or "request" in chunk:  # format 1: a flat request of the whole batch
        batch = Recipe.from_flat(chunk.get("request"))
        run = dict(chunk.get("extra") or {})
    else:
        batch = Recipe.from_dict(chunk.get("recipe"))
        run = dict(chunk.get("run") or {})
    batch_index = int(chunk.get("batch_index", 0))
    result.request = batch.for_image(batch_index).flat()
    result.info.update(
        batch_recipe=batch.flat(),
        batch_index=batch_index,
        model=chunk.get("model", {}),
        versions=chunk.get("versions", {}),
        created=chunk.get("created", ""),
        run=run,
        format=chunk.get("format", 1),
    )
    result.source = "diffuse-studio"


def _read_a1111(text: str, result: ImageMetadata) -> None:
    parsed = parse_parameters(text)
    result.errors.extend(parsed.errors)
    result.unknown.update(parsed.unknown)
    result.info.update(parsed.info)
    if parsed.fields.get("prompt") or "steps" in parsed.fields:
        result.request = parsed.fields
        result.source = "a1111"


def match_model_id(model_id: str, models: Iterable[ModelInfo]) -> str | None:
    """The id of the local model that ``model_id`` (from an image) names: by id, then by name."""
    models = list(models)
    for model in models:
        if model.id == model_id:
            return model.id
    wanted = model_id.casefold()
    for model in models:
        if wanted in (model.id.casefold(), model.name.casefold()):
            return model.id
    return None


def recipe_from_image_file(path: Path | str, models: Iterable[ModelInfo] | None = None) -> Recipe:
    """The recipe of an image file (ours or another tool's), for "use these settings" and for
    images dropped onto the window.

    With ``models`` (those the backend offers), the image's model name is mapped to a known model's
    id where one matches; otherwise it is kept, and validating the recipe tells the user the model
    is missing. Raises ``MetadataError`` with a message for the user when the file has no usable
    settings.
    """
    return settings_from_image_file(path, models)[0]


def settings_from_image_file(path: Path | str, models: Iterable[ModelInfo] | None = None) -> tuple[Recipe, ImageMetadata]:
    """``recipe_from_image_file``, and all that was read (``unknown``: what has no control here)."""
    meta = read_metadata(path)
    if not meta.ok:
        reason = "; ".join(meta.errors) or "no generation settings were found"
        raise MetadataError(f"{Path(path).name}: {reason}")
    try:
        recipe = meta.recipe()
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"{Path(path).name}: the settings are incomplete ({exc})") from exc
    if models is not None:
        recipe = recipe.with_(model_id=match_model_id(recipe.model.id, models) or recipe.model.id)
    return recipe, meta
