"""The preview canvas (fit to window or 1:1) and a strip of thumbnails to flip through images."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSizePolicy,
    QWidget,
)


class _ImageView(QWidget):
    """Paints one pixmap, scaled to fit or at 1:1. A ``sharp`` image (a finished picture) smaller
    than half the view is enlarged by a whole factor, each pixel a crisp square; a blurry small
    preview (a latent map) is smoothed instead."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.pixmap = QPixmap()
        self.fit = True
        self.sharp = True
        self.placeholder = "Type a prompt and press Generate (Ctrl+Enter)"
        self._scaled = QPixmap()
        self._scaled_key: tuple | None = None
        self.frames_painted = 0  # new images that reached the screen (the GUI benchmark reads it)
        self.new_frame = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        return QSize(512, 512) if self.fit or self.pixmap.isNull() else self.pixmap.size()

    def zoom(self) -> int:
        """The whole enlargement of a sharp small image in fit mode; 0 when it is scaled freely."""
        if not (self.fit and self.sharp) or self.pixmap.isNull():
            return 0
        factor = min(self.width() / self.pixmap.width(), self.height() / self.pixmap.height())
        return int(factor) if factor >= 2 else 0

    def target_rect(self) -> QRect:
        size = self.pixmap.size()
        zoom = self.zoom()
        if zoom:
            size = size * zoom
        elif self.fit:
            size = size.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRect(QPoint((self.width() - size.width()) // 2, (self.height() - size.height()) // 2), size)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt naming
        painter = QPainter(self)
        if self.pixmap.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        target = self.target_rect()
        if self.zoom():
            key = (self.pixmap.cacheKey(), target.size().toTuple(), "sharp")
            if self._scaled_key != key:
                self._scaled = self.pixmap.scaled(target.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                                                  Qt.TransformationMode.FastTransformation)
                self._scaled_key = key
            painter.drawPixmap(target.topLeft(), self._scaled)
        elif target.width() > 2 * self.pixmap.width():
            # a big upscale (a latent-sized preview, a small model's image): filter it properly once,
            # instead of the paint engine's per-pixel bilinear lookup, which looks blocky at 8×+
            key = (self.pixmap.cacheKey(), target.size().toTuple())
            if self._scaled_key != key:
                self._scaled = self.pixmap.scaled(target.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation)
                self._scaled_key = key
            painter.drawPixmap(target.topLeft(), self._scaled)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawPixmap(target, self.pixmap)
        if self.new_frame:
            self.new_frame = False
            self.frames_painted += 1


class PreviewCanvas(QScrollArea):
    """Shows the live previews, then the final image. ``fit`` toggles fit-to-window and 1:1.
    Its context menu sends the picture shown to image to image or inpainting."""

    frame_shown = Signal()  # a preview or an image reached the screen (the GUI benchmark counts these)
    send_requested = Signal(str)  # "img2img" | "inpaint": the user wants to start from the picture shown

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = _ImageView()
        self.setWidget(self.view)
        self.setWidgetResizable(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setBackgroundRole(self.view.backgroundRole())
        self.image: QImage | None = None
        self.path = ""  # the file of the picture shown, when it is a saved one
        self.is_preview = False
        self.frames_shown = 0
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for text, mode in (("Send to image to image", "img2img"), ("Send to inpainting", "inpaint")):
            action = QAction(text, self)
            action.triggered.connect(lambda _checked=False, mode=mode: self.send_requested.emit(mode))
            self.addAction(action)

    def show_image(self, image: QImage, *, preview: bool = False, sharp: bool | None = None, path: str = "") -> None:
        """``sharp`` (default: not a preview): show a small image's pixels as crisp squares; ``path``:
        the saved file the picture is (none for a preview)."""
        self.image = image
        self.path = "" if preview else path
        self.is_preview = preview
        self.view.sharp = not preview if sharp is None else sharp
        self.view.pixmap = QPixmap.fromImage(image)
        self.view.new_frame = True
        self.view.setToolTip("" if preview else f"{image.width()}×{image.height()} px")
        self._relayout()
        self.view.update()
        self.frames_shown += 1
        self.frame_shown.emit()

    def clear(self) -> None:
        self.image = None
        self.view.pixmap = QPixmap()
        self._relayout()
        self.view.update()

    def set_fit(self, fit: bool) -> None:
        self.view.fit = fit
        self._relayout()

    @property
    def fit(self) -> bool:
        return self.view.fit

    def _relayout(self) -> None:
        fit = self.view.fit or self.view.pixmap.isNull()
        self.setWidgetResizable(fit)
        if not fit:
            self.view.resize(self.view.pixmap.size())
        self.view.updateGeometry()


def _icon(image: QImage, side: int) -> QIcon:
    pixmap = QPixmap.fromImage(image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation))
    return QIcon(pixmap)


class ThumbnailStrip(QListWidget):
    """A horizontal row of thumbnails; selecting one emits its image and its saved path."""

    image_selected = Signal(QImage, str)

    def __init__(self, side: int = 72, parent: QWidget | None = None):
        super().__init__(parent)
        self.side = side
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListWidget.Movement.Static)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setIconSize(QSize(side, side))
        self.setFixedHeight(side + 28)
        self.setSpacing(2)
        self.currentItemChanged.connect(self._on_current)

    def add_image(self, image: QImage, path: str = "", tooltip: str = "") -> QListWidgetItem:
        """Add a thumbnail; a saved image is read back from its file when chosen, so a long
        session holds thumbnails in memory, not every full-size image."""
        item = QListWidgetItem(_icon(image, self.side), "")
        item.setData(Qt.ItemDataRole.UserRole, None if path else image)
        item.setData(Qt.ItemDataRole.UserRole + 1, path)
        item.setToolTip(tooltip or path or "not saved")
        if not path:
            item.setBackground(QColor(229, 72, 77, 60))
        self.addItem(item)
        self.scrollToItem(item)
        return item

    def image_at(self, row: int) -> QImage:
        item = self.item(row)
        image = item.data(Qt.ItemDataRole.UserRole)
        if image is None:
            image = QImage(item.data(Qt.ItemDataRole.UserRole + 1))
            if image.isNull():  # moved or deleted since: the thumbnail is all that is left
                image = item.icon().pixmap(self.side, self.side).toImage()
        return image

    def _on_current(self, item: QListWidgetItem | None, _previous=None) -> None:
        if item is not None:
            self.image_selected.emit(self.image_at(self.row(item)), item.data(Qt.ItemDataRole.UserRole + 1))
