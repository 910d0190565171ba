"""Render the app icon's PNG sizes from its SVG, and optionally the Windows .ico and macOS .icns.

    python packaging/make_icons.py                 # resources/icons/hicolor/<N>x<N>/apps/*.png
    python packaging/make_icons.py --ico X --icns Y  # also write those (the bundle build does)

The PNGs are committed, so an installed wheel needs no SVG renderer; rerun this after editing
``resources/icons/diffuse-studio.svg``. Rendering uses QtSvg from PySide6-Essentials and the
.ico/.icns come from Pillow, so no extra tool is needed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SVG = REPO / "resources" / "icons" / "diffuse-studio.svg"
HICOLOR = REPO / "resources" / "icons" / "hicolor"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICON_NAME = "diffuse-studio"


def render_pngs(svg: Path = SVG, out: Path = HICOLOR, sizes=SIZES) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QPainter needs one
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"error: {svg} is not a valid SVG")
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        target = out / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(target), "PNG"):
            raise SystemExit(f"error: could not write {target}")
        written.append(target)
    return written


def write_ico_icns(ico: Path | None, icns: Path | None, pngs: Path = HICOLOR) -> None:
    """The .ico from the committed PNGs; the .icns also gets a 1024 px (512@2x) render of the SVG."""
    from PIL import Image

    images = {
        size: Image.open(pngs / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png").convert("RGBA")
        for size in SIZES
    }
    if ico:
        ico.parent.mkdir(parents=True, exist_ok=True)
        images[256].save(
            ico,
            format="ICO",
            sizes=[(s, s) for s in ICO_SIZES],
            append_images=[images[s] for s in ICO_SIZES if s != 256],
        )
    if icns:
        icns.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            (retina,) = render_pngs(out=Path(tmp), sizes=(1024,))
            largest = Image.open(retina).convert("RGBA")
        largest.save(icns, format="ICNS", append_images=list(images.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ico", type=Path, help="also write a Windows .ico here")
    parser.add_argument("--icns", type=Path, help="also write a macOS .icns here")
    parser.add_argument("--skip-png", action="store_true", help="use the committed PNGs as they are")
    args = parser.parse_args(argv)
    if not args.skip_png:
        for path in render_pngs():
            print(path.relative_to(REPO))
    if args.ico or args.icns:
        write_ico_icns(args.ico, args.icns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
