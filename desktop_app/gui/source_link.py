"""Wires the window's pictures to image to image: one object, so the window needs one line.

- "Send to image to image / inpainting" from the canvas (a result, or an unsaved preview, saved
  to a working copy first) and from the gallery put the picture in the source panel; inpainting
  opens the mask painter.
- The output size follows the source picture (with its outpaint margins), snapped to the model's
  latent factor, when a picture is chosen (not when a recipe is restored: that has its own size).
- Painted masks are saved as they are finished, as PNGs named by their content in the app's
  cache folder; the gallery keeps a copy of the ones a saved picture used.
- The noise-schedule plot shows the strength's cut; a running job with a source shows its init
  picture first (the previews then form from it), and its result opens before/after.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject
from PySide6.QtGui import QColor, QImage, QPainter

from desktop_app.core import paths
from desktop_app.core.recipe import Recipe

log = logging.getLogger(__name__)


def working_folder() -> Path:
    folder = paths.cache_dir() / "sources"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_working_copy(image: QImage) -> str:
    """``image`` as a PNG in the working folder, named by its content; "" if it could not be written."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    raw = bytes(data.data())
    path = working_folder() / f"{hashlib.sha256(raw).hexdigest()[:24]}.png"
    try:
        if not path.is_file():
            temp = path.with_name(f".tmp-{path.name}")
            temp.write_bytes(raw)
            temp.replace(path)
    except OSError as exc:
        log.info("could not write a working copy %s: %s", path, exc)
        return ""
    return str(path)


def before_picture(recipe: Recipe) -> QImage:
    """The source picture as the result should be compared with it (outpainted: on its grown canvas)."""
    source = recipe.source
    picture = QImage(source.image)
    margins = source.outpaint
    if picture.isNull() or not margins.any:
        return picture
    width, height = margins.extended(picture.width(), picture.height())
    canvas = QImage(width, height, QImage.Format.Format_RGB32)
    canvas.fill(QColor(128, 128, 128))
    painter = QPainter(canvas)
    painter.drawImage(margins.left, margins.top, picture)
    painter.end()
    return canvas


class SourceLink(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.panel = window.source_panel
        self.workspace = window.workspace
        self.panel.save_mask = save_working_copy
        window.canvas.send_requested.connect(self.send_canvas)
        if window.gallery is not None:
            window.gallery.send_to_source.connect(self.send)
        self.panel.picture_changed.connect(self._on_picture)
        self.panel.mode_changed.connect(self._on_mode)
        self.panel.margins_changed.connect(self.fit_size)
        self.panel.changed.connect(self._plot)
        window.panel.changed.connect(self._plot)
        window.bridge.job_started.connect(self._on_started)
        window.bridge.image_ready.connect(self._on_image)

    def send(self, path: str, mode: str = "img2img") -> bool:
        """Start from the picture at ``path``: image to image, or inpainting with the mask painter."""
        if not self.panel.set_picture(path, mode):
            self.window.messages.show_message(f"{Path(path).name} could not be read as a picture.")
            return False
        self.window.tabs.setCurrentIndex(0)
        self.window.source_dock.show()
        self.window.source_dock.raise_()
        if mode == "inpaint":
            self.workspace.show_page("mask")
        return True

    def send_canvas(self, mode: str) -> None:
        canvas = self.window.canvas
        if canvas.image is None or canvas.image.isNull():
            self.window.statusBar().showMessage("There is no picture to start from yet.", 6000)
            return
        path = canvas.path if canvas.path and Path(canvas.path).is_file() else save_working_copy(canvas.image)
        if path:
            self.send(path, mode)

    def fit_size(self) -> None:
        """The output size of the source picture with its margins, on the model's latent grid."""
        info = self.window.panel.model_info()
        picture = self.panel.painter.picture
        if info is None or picture.isNull() or self.panel.area.currentData() == "masked":
            return
        left, top, right, bottom = self.panel.margins() if self.panel.current_mode() == "inpaint" else (0, 0, 0, 0)
        factor = info.latent_factor
        sides = (picture.width() + left + right, picture.height() + top + bottom)
        width, height = (min(max(side // factor * factor, info.min_size), info.max_size // factor * factor) for side in sides)
        self.window.panel.set_size(width, height)

    def _on_picture(self, path: str) -> None:
        self.workspace.set_available(mask=bool(path) and self.panel.current_mode() == "inpaint")
        if path and not self.panel.restoring:
            self.fit_size()
        if not path:
            self.workspace.set_available(compare=False)

    def _on_mode(self, mode: str) -> None:
        inpaint = mode == "inpaint" and bool(self.panel.image_path)
        self.workspace.set_available(mask=inpaint)
        if inpaint and not self.panel.restoring:
            self.workspace.show_page("mask")
            self.fit_size()

    def _plot(self) -> None:
        source = self.panel.parts()["source"]
        self.window.schedule_plot.set_strength(source.strength if source is not None else 1.0)

    def _on_started(self, job_id: str) -> None:
        recipe = self.window.requests.get(job_id)
        if recipe is None or recipe.source is None:
            return
        picture = before_picture(recipe)
        if not picture.isNull():
            self.window.canvas.show_image(picture, preview=True)
        self.workspace.show_page("picture")

    def _on_image(self, job_id: str, index: int, image: QImage, path: str) -> None:
        recipe = self.window.requests.get(job_id)
        if index or recipe is None or recipe.source is None:
            return
        before = before_picture(recipe)
        what = "inpainted" if recipe.source.masked else f"image to image, strength {recipe.source.strength:g}"
        self.workspace.compare.set_images(before, image, f"Left: the source picture · right: the result ({what})")
        self.workspace.set_available(compare=True)
        self.workspace.show_page("compare")
