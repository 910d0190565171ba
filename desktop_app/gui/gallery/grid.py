"""The gallery's grid: thumbnails drawn at the size the user picks, a favourite's badge, and a
line that says what to do when there is nothing to show."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.gui.gallery.model import FAVOURITE_ROLE

DEFAULT_SIDE = 144
MIN_SIDE, MAX_SIDE = 64, 320
GRID_MARGIN = 10
BADGE_COLOUR = QColor(245, 179, 1)


def scaled_thumbnail(pixmap: QPixmap, side: int) -> QPixmap:
    """``pixmap`` fitted into ``side``×``side``: a small picture is enlarged by a whole factor with
    its pixels kept sharp (a 64×64 image is pixels, not a blur); a large one is smoothed down."""
    if pixmap.isNull():
        return pixmap
    longest = max(pixmap.width(), pixmap.height())
    if longest * 2 <= side:
        factor = side // longest
        return pixmap.scaled(pixmap.width() * factor, pixmap.height() * factor, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.FastTransformation)
    return pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


class ThumbnailDelegate(QStyledItemDelegate):
    def __init__(self, view: QListView):
        super().__init__(view)
        self.view = view
        self._cache: dict[tuple[int, int], QPixmap] = {}

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        cell = option.rect.adjusted(2, 2, -2, -2)
        palette = option.palette
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(cell, palette.highlight())
        elif option.state & QStyle.StateFlag.State_MouseOver:
            hover = QColor(palette.highlight().color())
            hover.setAlpha(60)
            painter.fillRect(cell, hover)
        side = self.view.iconSize().width()
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            picture = self._scaled(pixmap, side)
            cell = option.rect
            painter.drawPixmap(cell.x() + (cell.width() - picture.width()) // 2,
                               cell.y() + (cell.height() - picture.height()) // 2, picture)
            if index.data(FAVOURITE_ROLE):
                self._badge(painter, QRect(cell.x() + (cell.width() - picture.width()) // 2,
                                           cell.y() + (cell.height() - picture.height()) // 2,
                                           picture.width(), picture.height()))

    def _scaled(self, pixmap: QPixmap, side: int) -> QPixmap:
        key = (pixmap.cacheKey(), side)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) > 400:  # a screenful or two; the loader keeps the originals
                self._cache.clear()
            found = self._cache[key] = scaled_thumbnail(pixmap, side)
        return found

    @staticmethod
    def _badge(painter: QPainter, picture: QRect) -> None:
        radius = max(7, min(picture.width(), picture.height()) // 12)
        centre = QPointF(picture.right() - radius - 2, picture.top() + radius + 2)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QColor(60, 40, 0))
        painter.setBrush(BADGE_COLOUR)
        painter.drawEllipse(centre, radius, radius)
        font = painter.font()
        font.setPixelSize(int(radius * 1.5))
        painter.setFont(font)
        painter.setPen(QColor(60, 40, 0))
        painter.drawText(QRect(int(centre.x() - radius), int(centre.y() - radius), 2 * radius, 2 * radius),
                         Qt.AlignmentFlag.AlignCenter, "★")
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        side = self.view.iconSize().width()
        return QSize(side + GRID_MARGIN, side + GRID_MARGIN)


class GalleryGrid(QListView):
    """The thumbnail grid; ``set_side`` picks the thumbnails' size, ``empty_label`` fills an empty grid."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(200)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setItemDelegate(ThumbnailDelegate(self))
        self.setMinimumWidth(MIN_SIDE * 2 + 3 * GRID_MARGIN)
        self.empty_label = QLabel(self.viewport())
        self.empty_label.setObjectName("hint")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        overlay = QVBoxLayout(self.viewport())
        overlay.setContentsMargins(24, 24, 24, 24)
        overlay.addWidget(self.empty_label)
        self.empty_label.hide()
        self.set_side(DEFAULT_SIDE)

    def set_side(self, side: int) -> None:
        side = max(MIN_SIDE, min(MAX_SIDE, int(side)))
        self.setIconSize(QSize(side, side))
        self.setGridSize(QSize(side + GRID_MARGIN, side + GRID_MARGIN))

    def show_empty(self, text: str) -> None:
        """``text`` over the empty grid; "" hides it."""
        self.empty_label.setText(text)
        self.empty_label.setVisible(bool(text))
