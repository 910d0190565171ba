from __future__ import annotations

import csv
import errno
import io
import json
import threading
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.gallery import export as export_module
from desktop_app.gallery.export import ExportCancelled, ExportError, ExportOptions, export_images
from desktop_app.gallery.filenames import render_template, safe_name, template_fields
from desktop_app.gallery.metadata import read_metadata

from .conftest import make_request, save_image, tiny_image

IMAGE_FIELDS = ("prompt", "negative_prompt", "model_id", "scheduler", "steps", "guidance_scale", "seed", "width", "height")


def _fields(request: dict) -> dict:
    return {k: request.get(k) for k in IMAGE_FIELDS}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_export_to_folder_keeps_metadata(saved_images, tmp_path, fmt):
    target = tmp_path / "export"
    result = export_images(saved_images, ExportOptions(target, format=fmt))
    assert len(result.files) == 5
    for source, name in zip(saved_images, result.files, strict=True):
        exported = read_metadata(target / name)
        original = read_metadata(source)
        assert exported.source == ("diffuse-studio" if fmt == "png" else "a1111"), exported.errors
        assert _fields(exported.request) == _fields(original.request)
        assert Image.open(target / name).format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_export_to_zip_with_manifest_and_contact_sheet(saved_images, tmp_path, fmt):
    result = export_images(saved_images, ExportOptions(tmp_path / "out.zip", as_zip=True, format=fmt, manifest=True, contact_sheet=True))
    assert result.destination == tmp_path / "out.zip"
    with zipfile.ZipFile(result.destination) as archive:
        names = archive.namelist()
        assert {"manifest.json", "manifest.csv", "contact_sheet.png"} <= set(names)
        manifest = json.loads(archive.read("manifest.json"))["images"]
        rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
        for row, entry, source in zip(rows, manifest, saved_images, strict=True):
            image = Image.open(io.BytesIO(archive.read(entry["file"])))
            exported = read_metadata(image)
            assert _fields(exported.request) == _fields(read_metadata(source).request)
            assert entry["seed"] == exported.request["seed"] and row["prompt"] == entry["prompt"]
        sheet = Image.open(io.BytesIO(archive.read("contact_sheet.png")))
        assert sheet.size[0] == 5 * export_module.SHEET_CELL
    assert not list(tmp_path.glob(".tmp-*"))  # the ZIP was built under a temporary name


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_strip_metadata(saved_images, tmp_path, fmt):
    result = export_images(saved_images[:1], ExportOptions(tmp_path / "x", format=fmt, strip_metadata=True))
    meta = read_metadata(tmp_path / "x" / result.files[0])
    assert meta.source == "none" and meta.request == {}


HOSTILE = ["../../x", "CON", "con.txt", "nul", "LPT1", "a" * 500, "a/b\\c", "/etc/passwd", "..", ".", "",
           "cat 🐱 émoji ✨", "tab\there\nnewline", 'quote"<>|?*:', "trailing dot.", " spaced ", "é" * 300]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_names_become_safe(text):
    for name in (safe_name(text), render_template("{prompt}_{model}", {"prompt": text, "model": text}, ".png"),
                 render_template(text, {}, ".jpg")):
        assert "/" not in name and "\\" not in name and name not in ("", ".", "..")
        assert ".." not in name and not name.startswith(".")
        assert len(name.encode("utf-8")) <= 255
        assert name.split(".")[0].upper() not in {"CON", "NUL", "PRN", "AUX", "LPT1", "COM1"}
        assert not any(ord(c) < 32 for c in name) and not name.endswith((".", " "))


def test_hostile_prompts_stay_inside_the_export_folder(out_dir, tmp_path):
    sources = [save_image(tiny_image(), make_request(prompt=p, seed=i), model=None, output_dir=out_dir)
               for i, p in enumerate(["../../escape", "CON", "x" * 500, "a/b/c", "🐱"])]
    target = tmp_path / "export"
    export_images(sources, ExportOptions(target, template="{prompt}"))
    written = _files(tmp_path / "export")
    assert len(written) == 5 and all(p.parent == target for p in written)
    assert not (tmp_path / "escape.png").exists()


def test_unknown_template_fields_and_broken_templates_are_harmless():
    fields = template_fields({"prompt": "p", "seed": 3, "created": 0})
    assert render_template("{seed}_{nope}", fields, ".png") == "3_{nope}.png"  # left visible, not an error
    assert render_template("{seed", fields, ".png") == "{seed.png"


def test_never_overwrites_existing_files(saved_images, tmp_path):
    target = tmp_path / "export"
    first = export_images(saved_images[:1], ExportOptions(target, template="same"))
    second = export_images(saved_images[:1], ExportOptions(target, template="same"))
    assert (first.files, second.files) == (["same.png"], ["same-2.png"])
    zip_one = export_images(saved_images[:1], ExportOptions(tmp_path / "a.zip", as_zip=True))
    zip_two = export_images(saved_images[:1], ExportOptions(tmp_path / "a.zip", as_zip=True))
    assert zip_one.destination != zip_two.destination and zip_one.destination.exists()


@pytest.mark.parametrize("as_zip", [False, True])
def test_disk_full_removes_partial_output(saved_images, tmp_path, monkeypatch, as_zip):
    target = tmp_path / ("out.zip" if as_zip else "out")
    real = export_module._encode
    calls = []

    def encode(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args)

    monkeypatch.setattr(export_module, "_encode", encode)
    with pytest.raises(ExportError, match="full. Nothing was exported"):
        export_images(saved_images, ExportOptions(target, as_zip=as_zip))
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and "home" not in p.parts]
    assert leftovers == []


def test_cancel_removes_partial_output_and_reports_progress(saved_images, tmp_path):
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done == 2:
            cancel.set()

    with pytest.raises(ExportCancelled):
        export_images(saved_images, ExportOptions(tmp_path / "out"), progress=progress, cancel=cancel)
    assert seen == [(1, 5), (2, 5)]
    assert _files(tmp_path / "out") == []


def test_the_manifest_lists_only_the_fields_that_apply(out_dir, tmp_path):
    ddim = save_image(tiny_image(), make_request(prompt="ddim", scheduler="DDIM", eta=0.5), output_dir=out_dir)
    ddpm = save_image(tiny_image(), make_request(prompt="ddpm", scheduler="DDPM", ddpm_variance="fixed_large"),
                      output_dir=out_dir)
    result = export_images([ddim, ddpm], ExportOptions(tmp_path / "m", manifest=True))
    first, second = json.loads((result.destination / "manifest.json").read_text())["images"]
    assert first["eta"] == 0.5 and "ddpm_variance" not in first and "classifier_scale" not in first
    assert second["ddpm_variance"] == "fixed_large" and "eta" not in second
    rows = list(csv.DictReader(io.StringIO((result.destination / "manifest.csv").read_text("utf-8-sig"))))
    assert (rows[0]["ddpm_variance"], rows[0]["classifier_scale"], rows[1]["eta"]) == ("", "", "")


def test_contact_sheet_captions_keep_their_spaces_and_small_images_are_enlarged(out_dir):
    small = save_image(tiny_image("red", (32, 32)), make_request(prompt="a red circle on the left of it"),
                       output_dir=out_dir)
    sheet = Image.open(io.BytesIO(export_module.contact_sheets([(small, "1234 a red circle on the left of it")])[0]))
    cell = export_module.SHEET_CELL
    red = sum(1 for x in range(cell) for y in range(cell) if sheet.getpixel((x, y))[0] > 200 and sheet.getpixel((x, y))[1] < 60)
    assert red >= (cell - 40) ** 2 // 2, f"a 32-px image is drawn at {red} px², not enlarged in its {cell}-px cell"
    caption = sheet.crop((0, cell, cell, sheet.height)).convert("L")
    gaps = _blank_runs(caption)[1:]  # the first run is the margin
    words = "1234 a red circle on the left of it"
    assert sum(gap >= 4 for gap in gaps) >= words.count(" "), f"word gaps collapse: blank runs {gaps}"


def _blank_runs(caption: Image.Image) -> list[int]:
    """Widths of the runs of blank columns across the first caption line."""
    columns = [max(caption.getpixel((x, y)) for y in range(0, 16)) < 90 for x in range(caption.width)]
    runs, current = [], 0
    for blank in columns:
        if blank:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return runs
