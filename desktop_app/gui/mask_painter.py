"""The mask painter: the source picture with a mask painted over it, and outpaint handles.

The mask is a greyscale image at the picture's own resolution (white: repaint), shown as a tinted
overlay. A brush paints it (size in the picture's pixels, hardness: how soft its edge falls off),
an eraser takes it away; invert, clear and undo act on the whole mask. A tablet's pressure scales
the brush. Around the picture, a handle on each edge drags the outpaint margin of that side (in
the picture's pixels); the added area is drawn hatched.

``stroke_finished`` fires when a stroke, an invert, a clear or an undo changed the mask: that is
when the window saves it for the recipe (not on every mouse move).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QRadialGradient, QTabletEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

MASK_TINT = QColor(229, 72, 77, 130)  # the overlay where the mask says repaint
OUTPAINT_FILL = QColor(59, 130, 246, 60)
HANDLE_SIZE = 12
MAX_UNDO = 40
EDGES = ("left", "top", "right", "bottom")


def blank_mask(width: int, height: int) -> QImage:
    mask = QImage(width, height, QImage.Format.Format_Grayscale8)
    mask.fill(0)
    return mask


class MaskPainter(QWidget):
    stroke_finished = Signal()  # the mask changed (a stroke ended, invert, clear, undo)
    margins_changed = Signal(int, int, int, int)  # outpaint margins: left, top, right, bottom (picture pixels)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.picture = QImage()
        self.mask = QImage()
        self.brush_size = 16.0  # diameter in picture pixels
        self.hardness = 0.8  # 1: a hard edge; 0: soft all the way from the centre
        self.erasing = False
        self.margins = {edge: 0 for edge in EDGES}
        self.max_margin = 512
        self._undo: list[QImage] = []
        self._last: QPointF | None = None
        self._pressure = 1.0
        self._dragging: str | None = None  # the outpaint handle being dragged
        self._drag_start: tuple[QPointF, int] | None = None
        self._overlay: QImage | None = None
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_TabletTracking, True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Paint where the picture should change (left button). Drag the blue handles on the edges "
                        "to extend the picture (outpainting).")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        return QSize(512, 512)

    # ---- the picture and its mask ---------------------------------------------------------------
    def set_picture(self, picture: QImage, mask: QImage | None = None) -> None:
        self.picture = picture.convertToFormat(QImage.Format.Format_RGB32)
        size = picture.size()
        self.mask = (mask.convertToFormat(QImage.Format.Format_Grayscale8).scaled(size)
                     if mask is not None and not mask.isNull() else blank_mask(size.width(), size.height()))
        self._undo.clear()
        self.margins = {edge: 0 for edge in EDGES}
        self._overlay = None
        self.update()

    def has_mask(self) -> bool:
        if self.mask.isNull():
            return False
        bits = self.mask.constBits()
        return any(bytes(bits))

    def set_margins(self, left: int, top: int, right: int, bottom: int) -> None:
        self.margins = dict(zip(EDGES, (left, top, right, bottom), strict=True))
        self.update()

    def invert(self) -> None:
        self._remember()
        rgb = self.mask.convertToFormat(QImage.Format.Format_RGB32)
        rgb.invertPixels()  # (a greyscale image has no colour channels for invertPixels to flip)
        self.mask = rgb.convertToFormat(QImage.Format.Format_Grayscale8)
        self._changed()

    def clear(self) -> None:
        self._remember()
        self.mask.fill(0)
        self._changed()

    def undo(self) -> bool:
        if not self._undo:
            return False
        self.mask = self._undo.pop()
        self._changed()
        return True

    def can_undo(self) -> bool:
        return bool(self._undo)

    def _remember(self) -> None:
        self._undo.append(self.mask.copy())
        del self._undo[:-MAX_UNDO]

    def _changed(self) -> None:
        self._overlay = None
        self.update()
        self.stroke_finished.emit()

    # ---- geometry ---------------------------------------------------------------------------------
    def canvas_size(self) -> tuple[int, int]:
        m = self.margins
        return self.picture.width() + m["left"] + m["right"], self.picture.height() + m["top"] + m["bottom"]

    def picture_rect(self) -> QRectF:
        """Where the picture is drawn: the extended canvas fitted into the widget, margins around it."""
        if self.picture.isNull():
            return QRectF()
        width, height = self.canvas_size()
        room = HANDLE_SIZE * 2
        scale = min((self.width() - room) / width, (self.height() - room) / height)
        left = (self.width() - width * scale) / 2 + self.margins["left"] * scale
        top = (self.height() - height * scale) / 2 + self.margins["top"] * scale
        return QRectF(left, top, self.picture.width() * scale, self.picture.height() * scale)

    def scale(self) -> float:
        rect = self.picture_rect()
        return rect.width() / self.picture.width() if not self.picture.isNull() else 1.0

    def to_picture(self, point: QPointF) -> QPointF:
        rect, scale = self.picture_rect(), self.scale()
        return QPointF((point.x() - rect.left()) / scale, (point.y() - rect.top()) / scale)

    def handle_rects(self) -> dict[str, QRectF]:
        rect, scale = self.picture_rect(), self.scale()
        m = {edge: value * scale for edge, value in self.margins.items()}
        outer = rect.adjusted(-m["left"], -m["top"], m["right"], m["bottom"])
        s, c = HANDLE_SIZE, outer.center()
        return {"left": QRectF(outer.left() - s, c.y() - s, s, 2 * s), "right": QRectF(outer.right(), c.y() - s, s, 2 * s),
                "top": QRectF(c.x() - s, outer.top() - s, 2 * s, s), "bottom": QRectF(c.x() - s, outer.bottom(), 2 * s, s)}

    # ---- painting ---------------------------------------------------------------------------------
    def _dab(self, painter: QPainter, at: QPointF) -> None:
        radius = max(self.brush_size * self._pressure / 2, 0.5)
        value = 0 if self.erasing else 255
        gradient = QRadialGradient(at, radius)
        solid, clear = QColor(value, value, value, 255), QColor(value, value, value, 0)
        gradient.setColorAt(0.0, solid)
        gradient.setColorAt(max(min(self.hardness, 0.999), 0.0), solid)
        gradient.setColorAt(1.0, clear)
        painter.setBrush(QBrush(gradient))
        painter.drawEllipse(at, radius, radius)

    def _stroke_to(self, point: QPointF) -> None:
        at = self.to_picture(point)
        rgba = self.mask.convertToFormat(QImage.Format.Format_ARGB32)
        painter = QPainter(rgba)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        start = self._last if self._last is not None else at
        distance = ((at.x() - start.x()) ** 2 + (at.y() - start.y()) ** 2) ** 0.5
        spacing = max(self.brush_size * 0.15, 0.5)
        count = max(1, int(distance / spacing))
        for k in range(1, count + 1):
            t = k / count
            self._dab(painter, QPointF(start.x() + (at.x() - start.x()) * t, start.y() + (at.y() - start.y()) * t))
        painter.end()
        self.mask = rgba.convertToFormat(QImage.Format.Format_Grayscale8)
        self._last = at
        self._overlay = None
        self.update()

    def _begin(self, point: QPointF) -> None:
        self._remember()
        self._last = None
        self._stroke_to(point)

    def _end(self) -> None:
        if self._last is not None:
            self._last = None
            self._changed()

    # ---- events -----------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if self.picture.isNull():
            return
        point = event.position()
        for edge, rect in self.handle_rects().items():
            if rect.contains(point):
                self._dragging, self._drag_start = edge, (point, self.margins[edge])
                return
        if event.button() == Qt.MouseButton.LeftButton:
            self._pressure = 1.0
            self._begin(point)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if self._dragging is not None:
            self._drag_margin(event.position())
        elif event.buttons() & Qt.MouseButton.LeftButton and self._last is not None:
            self._stroke_to(event.position())

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if self._dragging is not None:
            self._drag_margin(event.position())
            self._dragging = self._drag_start = None
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self._end()

    def tabletEvent(self, event: QTabletEvent) -> None:  # noqa: N802 - Qt naming
        if self.picture.isNull():
            return
        self._pressure = max(event.pressure(), 0.05)
        kind = event.type()
        if kind == QTabletEvent.Type.TabletPress:
            self._begin(event.position())
        elif kind == QTabletEvent.Type.TabletMove and self._last is not None:
            self._stroke_to(event.position())
        elif kind == QTabletEvent.Type.TabletRelease:
            self._end()
        event.accept()  # no synthesised mouse events on top

    def _drag_margin(self, point: QPointF) -> None:
        start, value = self._drag_start
        edge = self._dragging
        delta = (point.x() - start.x()) if edge in ("left", "right") else (point.y() - start.y())
        outward = -delta if edge in ("left", "top") else delta
        margin = int(max(0, min(self.max_margin, value + outward / self.scale())))
        if margin != self.margins[edge]:
            self.margins[edge] = margin
            self.update()
            self.margins_changed.emit(*(self.margins[e] for e in EDGES))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt naming
        painter = QPainter(self)
        if self.picture.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Send a picture here (right-click a picture, or drop a file) to paint a mask")
            return
        rect, scale = self.picture_rect(), self.scale()
        m = {edge: value * scale for edge, value in self.margins.items()}
        outer = rect.adjusted(-m["left"], -m["top"], m["right"], m["bottom"])
        if outer != rect:
            painter.fillRect(outer, QBrush(OUTPAINT_FILL, Qt.BrushStyle.BDiagPattern))
            painter.setPen(QPen(OUTPAINT_FILL.darker(150), 1, Qt.PenStyle.DashLine))
            painter.drawRect(outer)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(rect, self.picture)
        painter.drawImage(rect, self._tinted())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(59, 130, 246, 200))
        for handle in self.handle_rects().values():
            painter.drawRoundedRect(handle, 3, 3)

    def _tinted(self) -> QImage:
        """The mask as a red overlay (its grey level as the overlay's opacity), cached between strokes."""
        if self._overlay is None:
            overlay = QImage(self.mask.size(), QImage.Format.Format_ARGB32_Premultiplied)
            overlay.fill(MASK_TINT)
            painter = QPainter(overlay)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
            alpha = QImage(bytes(self.mask.constBits()), self.mask.width(), self.mask.height(), self.mask.bytesPerLine(),
                           QImage.Format.Format_Alpha8).copy()
            painter.drawImage(0, 0, alpha)
            painter.end()
            self._overlay = overlay
        return self._overlay
