"""Exporting images: to a folder or a ZIP, as PNG, JPEG or WebP, with or without metadata.

PNG keeps both recipes (the original file is copied byte for byte); JPEG and WebP carry the
AUTOMATIC1111 ``parameters`` text in the EXIF UserComment, as A1111 does. Optional extras: a
manifest (JSON and CSV) of every exported image's parameters and contact sheets (grid PNGs with
captions). File names come from a template and are always made safe and unique.

``export_images`` is all or nothing: a failure (e.g. a full disk) or a cancel removes whatever it
wrote, and the error says what happened.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from desktop_app.core.files import create_temp, fsync_folder, publish_new, write_new
from desktop_app.gallery.a1111 import format_parameters
from desktop_app.gallery.fields import applicable_fields
from desktop_app.gallery.filenames import render_template, safe_filename, template_fields
from desktop_app.gallery.metadata import (
    EXIF_IFD,
    USER_COMMENT,
    ImageMetadata,
    encode_user_comment,
    read_metadata,
)
from desktop_app.gallery.save import encode_png

FORMATS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
DEFAULT_TEMPLATE = "{date}_{seed}_{prompt}"
CSV_COLUMNS = ("file", "source", "prompt", "negative_prompt", "model_id", "scheduler", "steps", "guidance_scale",
               "seed", "width", "height", "eta", "ddpm_variance", "classifier_target", "classifier_scale", "parameters")
SHEET_COLUMNS = 8
SHEET_PER_PAGE = 64
SHEET_CELL = 192
CAPTION_SIZE = 12


class ExportError(OSError):
    """The export failed; nothing of it was left behind. The message says why."""


class ExportCancelled(Exception):
    """The user cancelled; nothing of the export was left behind."""


@dataclass(frozen=True)
class ExportOptions:
    destination: Path  # a folder, or the .zip file to make
    as_zip: bool = False
    format: str = "png"  # "png", "jpeg" or "webp"
    strip_metadata: bool = False
    manifest: bool = False
    contact_sheet: bool = False
    template: str = DEFAULT_TEMPLATE
    quality: int = 92


@dataclass
class ExportResult:
    destination: Path
    files: list[str] = field(default_factory=list)  # names inside the folder / ZIP


def _parameters(meta: ImageMetadata) -> str:
    if meta.parameters:
        return meta.parameters
    if meta.source == "none":
        return ""
    try:  # another tool's graph (ComfyUI, InvokeAI): write it out as an A1111 text
        recipe = meta.recipe()
    except (TypeError, ValueError):
        return ""
    return format_parameters(recipe, width=meta.width, height=meta.height)


def _encode(source: Path, meta: ImageMetadata, options: ExportOptions) -> bytes:
    if options.format == "png" and not options.strip_metadata:
        return source.read_bytes()  # both recipes and anything else the file carries, untouched
    with Image.open(source) as image:
        image.load()
        if options.format == "png":
            return encode_png(image, {})
        if image.mode not in ("RGB", "L") and options.format == "jpeg":
            image = image.convert("RGB")
        exif = Image.Exif()
        text = "" if options.strip_metadata else _parameters(meta)
        if text:
            exif.get_ifd(EXIF_IFD)[USER_COMMENT] = encode_user_comment(text)
        buffer = io.BytesIO()
        kind = "JPEG" if options.format == "jpeg" else "WEBP"
        image.save(buffer, format=kind, quality=options.quality, exif=exif.tobytes() if text else b"")
        return buffer.getvalue()


def _created(meta: ImageMetadata, source: Path) -> datetime:
    text = meta.info.get("created")
    if isinstance(text, str) and text:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return datetime.fromtimestamp(source.stat().st_mtime)


def _manifest_row(name: str, meta: ImageMetadata, strip: bool) -> dict[str, Any]:
    fields = applicable_fields(meta.request)  # no η on a DPM++ image, no classifier scale when it was off
    row = {"file": name, **{k: v for k, v in fields.items() if k in CSV_COLUMNS}, "source": meta.source}
    row.setdefault("width", meta.width)
    row.setdefault("height", meta.height)
    row["parameters"] = "" if strip else _parameters(meta)
    return row


def _csv_safe(value: Any) -> Any:
    """Spreadsheets run cells starting with = + - @ as formulas; a prompt must stay text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _manifest_files(rows: list[dict[str, Any]]) -> dict[str, bytes]:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_safe(v) for k, v in row.items()})
    return {
        "manifest.json": json.dumps({"images": rows}, indent=2, ensure_ascii=False, default=str).encode("utf-8"),
        "manifest.csv": text.getvalue().encode("utf-8-sig"),  # the BOM makes Excel read UTF-8
    }


def caption_font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The contact sheet's caption font: Pillow's own, at a size where a space still looks like one
    (at 10 px its hinting squeezes word gaps to 2 px, and captions read as one long word)."""
    try:
        return ImageFont.load_default(CAPTION_SIZE)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def contact_sheets(items: Sequence[tuple[Path, str]], cell: int = SHEET_CELL) -> list[bytes]:
    """Grid PNGs of (image, caption), at most ``SHEET_PER_PAGE`` images each."""
    font = caption_font()
    line_height = CAPTION_SIZE + 3
    caption_height = 2 * line_height + 4
    pages = []
    for start in range(0, len(items), SHEET_PER_PAGE):
        page = items[start:start + SHEET_PER_PAGE]
        columns = min(SHEET_COLUMNS, len(page))
        rows = math.ceil(len(page) / columns)
        sheet = Image.new("RGB", (columns * cell, rows * (cell + caption_height)), (24, 24, 24))
        draw = ImageDraw.Draw(sheet)
        for i, (path, caption) in enumerate(page):
            x, y = (i % columns) * cell, (i // columns) * (cell + caption_height)
            try:
                with Image.open(path) as image:
                    image.draft("RGB", (cell, cell))
                    thumb = _fit(image.convert("RGB"), cell - 8)
                sheet.paste(thumb, (x + (cell - thumb.width) // 2, y + (cell - thumb.height) // 2))
            except OSError:
                draw.rectangle((x + 4, y + 4, x + cell - 4, y + cell - 4), outline=(120, 40, 40))
            for line_no, line in enumerate(_wrap(caption, font, cell - 6)[:2]):
                draw.text((x + 3, y + cell + 2 + line_no * line_height), line, fill=(220, 220, 220), font=font)
        buffer = io.BytesIO()
        sheet.save(buffer, format="PNG")
        pages.append(buffer.getvalue())
    return pages


def _fit(image: Image.Image, side: int) -> Image.Image:
    """Into ``side``×``side``: a small image enlarged by a whole factor, its pixels kept sharp; a big one
    shrunk smoothly."""
    longest = max(image.size)
    if longest * 2 <= side:
        factor = side // longest
        return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    image.thumbnail((side, side))
    return image


def _wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    text = "".join(ch if ch.isprintable() and ord(ch) < 256 else "?" for ch in text.replace("\n", " "))
    lines, current = [], ""
    for word in text.split(" "):
        trial = f"{current} {word}".strip()
        if font.getlength(trial) <= width or not current:
            current = trial
        else:
            lines.append(current)
            current = word
    lines.append(current)
    return [line if font.getlength(line) <= width else line[: max(1, int(len(line) * width / font.getlength(line)) - 1)] + "…"
            for line in lines if line]


class _Sink:
    """Where exported files go: a folder (each file atomic and new, removed again on failure) or a
    ZIP (written aside, then given a name no other file has). Files get the umask's permissions."""

    def __init__(self, options: ExportOptions):
        self.options = options
        self.taken: set[str] = set()
        self.written: list[Path] = []
        if options.as_zip:
            target = options.destination
            if target.suffix.lower() != ".zip":
                target = target.with_name(target.name + ".zip")
            target.parent.mkdir(parents=True, exist_ok=True)
            self.final = target.parent / safe_filename(target.stem, ".zip")
            fd, self.temp = create_temp(self.final.parent, ".zip")
            os.close(fd)
            self.zip = zipfile.ZipFile(self.temp, "w", compression=zipfile.ZIP_STORED)
        else:
            self.final = options.destination
            self.final.mkdir(parents=True, exist_ok=True)
            self.zip = None

    def _taken(self, name: str) -> bool:
        return name.lower() in self.taken  # names that differ only in case are one file on many disks

    def add(self, name: str, data: bytes) -> str:
        if self.zip is not None:
            stem, suffix = Path(name).stem, Path(name).suffix
            unique, n = name, 1
            while self._taken(unique):
                n += 1
                unique = f"{stem}-{n}{suffix}"
            self.taken.add(unique.lower())
            compress = zipfile.ZIP_STORED if suffix in (".png", ".jpg", ".webp") else zipfile.ZIP_DEFLATED
            self.zip.writestr(unique, data, compress_type=compress)
            return unique
        target = write_new(data, self.final, name, self._taken)  # all or nothing, never over another file
        self.taken.add(target.name.lower())
        self.written.append(target)
        return target.name

    def commit(self) -> Path:
        if self.zip is None:
            return self.final
        self.zip.close()
        with open(self.temp, "rb+") as fh:
            os.fsync(fh.fileno())
        self.final = publish_new(self.temp, self.final.parent, self.final.name)
        fsync_folder(self.final.parent)
        return self.final

    def abort(self) -> None:
        if self.zip is not None:
            try:
                self.zip.close()
            except Exception:  # closing a ZIP on a full disk may fail too; it is deleted anyway
                pass
            self.temp.unlink(missing_ok=True)
        for path in self.written:
            path.unlink(missing_ok=True)


def export_images(
    sources: Sequence[Path | str],
    options: ExportOptions,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> ExportResult:
    """Export ``sources`` (image files); see the module docstring. Raises ExportError/ExportCancelled."""
    if options.format not in FORMATS:
        raise ValueError(f"unknown format {options.format!r}; choose one of {', '.join(FORMATS)}")
    if not (isinstance(options.quality, int) and not isinstance(options.quality, bool) and 1 <= options.quality <= 100):
        raise ValueError(f"the quality must be a whole number from 1 to 100, not {options.quality!r}")
    sources = [Path(s) for s in sources]
    try:
        sink = _Sink(options)
    except OSError as exc:
        raise _export_error(exc, options.destination) from exc
    result = ExportResult(destination=sink.final)
    rows: list[dict[str, Any]] = []
    sheet_items: list[tuple[Path, str]] = []
    try:
        for i, source in enumerate(sources):
            if cancel is not None and cancel.is_set():
                raise ExportCancelled("the export was cancelled; nothing was kept")
            meta = read_metadata(source)
            record = {**meta.request, "path": str(source), "width": meta.width, "height": meta.height}
            name = render_template(options.template, template_fields(record, i, _created(meta, source)), FORMATS[options.format])
            written = sink.add(name, _encode(source, meta, options))
            result.files.append(written)
            rows.append(_manifest_row(written, meta, options.strip_metadata))
            seed = meta.request.get("seed")
            sheet_items.append((source, f"{written}" if options.strip_metadata else f"{seed if seed is not None else ''} {meta.request.get('prompt', '')}".strip()))
            if progress is not None:
                progress(i + 1, len(sources))
        if options.manifest:
            for name, data in _manifest_files(rows).items():
                result.files.append(sink.add(name, data))
        if options.contact_sheet and sheet_items:
            pages = contact_sheets(sheet_items)
            for n, data in enumerate(pages, start=1):
                result.files.append(sink.add("contact_sheet.png" if len(pages) == 1 else f"contact_sheet_{n:02d}.png", data))
        result.destination = sink.commit()
    except ExportCancelled:
        sink.abort()
        raise
    except OSError as exc:
        sink.abort()
        raise _export_error(exc, sink.final) from exc
    except BaseException:
        sink.abort()
        raise
    return result


def _export_error(exc: OSError, where: Path) -> ExportError:
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        message = f"The disk holding {where} is full. Nothing was exported; free some space and try again."
    else:
        message = f"The export to {where} failed: {exc.strerror or exc}. Nothing was exported."
    return ExportError(exc.errno or errno.EIO, message, str(where))
