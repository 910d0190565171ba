"""The thumbnail grid's model: rows from the gallery index, thumbnails made on worker threads.

Only the rows the view draws ask for a thumbnail, so scrolling through 10,000 images makes only
the visible ones. Thumbnails are cached on disk (``desktop_app.gallery.thumbnails``) and, as
pixmaps, in a memory cache bounded by bytes, so memory stays flat however far the user scrolls.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPixmap

from desktop_app.gallery.store import GalleryStore, ImageRecord
from desktop_app.gallery.thumbnails import THUMBNAIL_SIZE, ByteBoundedLru, make_thumbnail

ID_ROLE = Qt.ItemDataRole.UserRole + 1
PATH_ROLE = Qt.ItemDataRole.UserRole + 2
FAVOURITE_ROLE = Qt.ItemDataRole.UserRole + 3
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024  # ~250 thumbnails of 256×256 pixels


class _Relay(QObject):
    """Carries results from worker threads to the GUI thread (queued connections)."""

    done = Signal(str, QImage)
    failed = Signal(str, str)


class _ThumbnailJob(QRunnable):
    def __init__(self, path: str, relay: _Relay):
        super().__init__()
        self.path = path
        self.relay = relay

    def run(self) -> None:
        try:
            image = QImage(str(make_thumbnail(Path(self.path))))
            if image.isNull():
                raise OSError("the thumbnail could not be decoded")
        except Exception as exc:  # an unreadable file shows a placeholder, never a crash
            self.relay.failed.emit(self.path, str(exc))
            return
        self.relay.done.emit(self.path, image)


class ThumbnailLoader(QObject):
    """Pixmaps for image paths: from memory, else made on a worker thread (``ready`` says when)."""

    ready = Signal(str)
    failed = Signal(str, str)

    def __init__(self, pool: QThreadPool, max_bytes: int = DEFAULT_CACHE_BYTES, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = pool
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_done)
        self._relay.failed.connect(self._on_failed)
        self.cache: ByteBoundedLru[str, QPixmap] = ByteBoundedLru(
            max_bytes, lambda p: p.width() * p.height() * max(p.depth() // 8, 1))
        self._pending: set[str] = set()
        self._broken: set[str] = set()
        self._priority = itertools.count()

    def pixmap(self, path: str) -> QPixmap | None:
        found = self.cache.get(path)
        if found is None and path not in self._pending and path not in self._broken:
            self._pending.add(path)
            # The newest request first: what the user scrolled to now matters more than before.
            self._pool.start(_ThumbnailJob(path, self._relay), min(next(self._priority), 2**30))
        return found

    def forget(self, path: str) -> None:
        self.cache.discard(path)
        self._broken.discard(path)

    def _on_done(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self.cache.put(path, QPixmap.fromImage(image))
        self.ready.emit(path)

    def _on_failed(self, path: str, reason: str) -> None:
        self._pending.discard(path)
        self._broken.add(path)
        self.failed.emit(path, reason)


class GalleryModel(QAbstractListModel):
    """One row per image of the current query, newest first."""

    def __init__(self, store: GalleryStore, loader: ThumbnailLoader, parent: QObject | None = None):
        super().__init__(parent)
        self.store = store
        self.loader = loader
        self._rows: list[tuple[int, str]] = []
        self._row_of: dict[str, int] = {}
        self._records: ByteBoundedLru[int, ImageRecord] = ByteBoundedLru(2000, lambda r: 1)
        self._placeholder: QPixmap | None = None
        loader.ready.connect(self._thumbnail_ready)
        loader.failed.connect(lambda path, _reason: self._thumbnail_ready(path))

    def set_rows(self, rows: list[tuple[int, str]]) -> None:
        self.beginResetModel()
        self._rows = rows
        self._row_of = {path: i for i, (_, path) in enumerate(rows)}
        self._records.clear()
        self.endResetModel()

    def insert_newest(self, image_id: int, path: str) -> None:
        """Show one new image at the top without resetting the view (scroll and selection stay)."""
        if path in self._row_of:
            self._records.discard(image_id)
            return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.insert(0, (image_id, path))
        self._row_of = {p: i for i, (_, p) in enumerate(self._rows)}
        self.endInsertRows()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def image_id(self, row: int) -> int:
        return self._rows[row][0]

    def path(self, row: int) -> str:
        return self._rows[row][1]

    def row_of(self, path: str) -> int | None:
        return self._row_of.get(path)

    def record(self, row: int) -> ImageRecord | None:
        image_id = self._rows[row][0]
        found = self._records.get(image_id)
        if found is None:
            found = self.store.record(image_id)
            if found is not None:
                self._records.put(image_id, found)
        return found

    def invalidate(self, image_id: int) -> None:
        self._records.discard(image_id)

    def _placeholder_pixmap(self) -> QPixmap:
        if self._placeholder is None:
            self._placeholder = QPixmap(QSize(THUMBNAIL_SIZE // 2, THUMBNAIL_SIZE // 2))
            self._placeholder.fill(QColor(60, 60, 60))
        return self._placeholder

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        image_id, path = self._rows[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self.loader.pixmap(path) or self._placeholder_pixmap()
        if role == Qt.ItemDataRole.ToolTipRole:
            record = self.record(index.row())
            return record.prompt if record and record.prompt else Path(path).name
        if role == ID_ROLE:
            return image_id
        if role == PATH_ROLE:
            return path
        if role == FAVOURITE_ROLE:
            record = self.record(index.row())
            return bool(record and record.favourite)
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        flags = super().flags(index)
        return flags | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else flags

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:
        """Dragging images out gives other programs the files themselves."""
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(self._rows[i.row()][1]) for i in indexes if i.isValid()])
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def _thumbnail_ready(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])
