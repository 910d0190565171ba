"""Before and after, split: the source picture left of a line, the result right of it.

Drag the line (or the slider under the pictures, or press ←/→) to move the split. Both pictures
are drawn into the same rectangle, so a result of another size (an outpainted or "only masked"
one) still lines up with its source.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget


class _SplitView(QWidget):
    moved = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.before, self.after = QImage(), QImage()
        self.split = 0.5
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)
        self.setCursor(Qt.CursorShape.SplitHCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        return QSize(512, 512)

    def target_rect(self) -> QRectF:
        if self.after.isNull():
            return QRectF()
        size = self.after.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRectF((self.width() - size.width()) / 2, (self.height() - size.height()) / 2, size.width(), size.height())

    def set_split(self, split: float) -> None:
        split = min(max(split, 0.0), 1.0)
        if split != self.split:
            self.split = split
            self.update()
            self.moved.emit(split)

    def _split_at(self, point: QPointF) -> None:
        rect = self.target_rect()
        if rect.width() > 0:
            self.set_split((point.x() - rect.left()) / rect.width())

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self._split_at(event.position())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._split_at(event.position())

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        step = {Qt.Key.Key_Left: -0.05, Qt.Key.Key_Right: 0.05}.get(event.key())
        if step is None:
            super().keyPressEvent(event)
            return
        self.set_split(self.split + step)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt naming
        painter = QPainter(self)
        if self.after.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "An image-to-image result shows here beside its source")
            return
        rect = self.target_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        x = rect.left() + rect.width() * self.split
        painter.drawImage(rect, self.after)
        if not self.before.isNull():
            painter.save()
            painter.setClipRect(QRectF(rect.left(), rect.top(), x - rect.left(), rect.height()))
            painter.drawImage(rect, self.before)
            painter.restore()
        painter.setPen(QPen(QColor("white"), 2))
        painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        painter.setPen(QPen(QColor(0, 0, 0, 160), 1))
        painter.drawLine(QPointF(x + 1.5, rect.top()), QPointF(x + 1.5, rect.bottom()))
        for text, left in (("before", True), ("after", False)):
            box = QRect(int(rect.left()) + 6, int(rect.top()) + 4, int(rect.width()) - 12, 20)
            painter.setPen(QColor("white"))
            painter.drawText(box, (Qt.AlignmentFlag.AlignLeft if left else Qt.AlignmentFlag.AlignRight), text)


class CompareView(QWidget):
    """The split view with a slider under it; ``split`` is 0 (all after) … 1 (all before)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = _SplitView()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 1000)
        self.slider.setValue(500)
        self.slider.setToolTip("Move the split between the source (left) and the result (right)")
        self.slider.setAccessibleName("Before and after split")
        self.caption = QLabel()
        self.caption.setObjectName("hint")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.slider)
        layout.addWidget(self.caption)
        self.slider.valueChanged.connect(lambda value: self.view.set_split(value / 1000))
        self.view.moved.connect(self._follow)

    def _follow(self, split: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(split * 1000))
        self.slider.blockSignals(False)

    def set_images(self, before: QImage, after: QImage, caption: str = "") -> None:
        self.view.before, self.view.after = before, after
        self.caption.setText(caption)
        self.view.update()

    @property
    def split(self) -> float:
        return self.view.split
