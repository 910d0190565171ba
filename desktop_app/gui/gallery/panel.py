"""``GalleryPanel``: the thumbnail grid with search, filters, details and actions.

The main window adds it as a tab or dock, connects ``use_settings`` to the controls, and calls
``show_new`` with each image the gallery ``Library`` saved (and indexed). Everything slow (scanning the folders,
making thumbnails) happens on the panel's own thread pool; ``shutdown`` (also run on close)
stops and waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (
    QCoreApplication,
    QItemSelectionModel,
    QObject,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.models import ModelInfo
from desktop_app.core.recipe import Recipe
from desktop_app.gallery.a1111 import format_parameters
from desktop_app.gallery.export import ExportOptions, ExportResult
from desktop_app.gallery.metadata import MetadataError, match_model_id, recipe_from_image_file
from desktop_app.gallery.store import GalleryStore, ImageRecord, Query, SyncReport, open_default_store
from desktop_app.gallery.thumbnails import prune_thumbnails
from desktop_app.gui.gallery.details import DetailsPane
from desktop_app.gui.gallery.export_dialog import ExportDialog, ExportJob, ExportRelay
from desktop_app.gui.gallery.model import GalleryModel, ThumbnailLoader

ALL = ""
RESYNC_AFTER_S = 10.0  # showing the panel again looks for outside changes when the last scan is older
log = logging.getLogger(__name__)


class _SyncRelay(QObject):
    finished = Signal(object)


class _SyncJob(QRunnable):
    def __init__(self, store: GalleryStore, relay: _SyncRelay, cancel: threading.Event, purge: bool):
        super().__init__()
        self.store, self.relay, self.cancel, self.purge = store, relay, cancel, purge

    def run(self) -> None:
        try:
            if self.purge:
                self.store.purge_deleted()  # deletions a crash left undecided: the user did delete them
                prune_thumbnails()
            report = self.store.sync(cancel=self.cancel)
        except Exception as exc:  # reported in the panel; the images are still on disk
            report = exc
        self.relay.finished.emit(report)


class GalleryPanel(QWidget):
    use_settings = Signal(object)  # a Recipe, for the main window's controls
    send_to_source = Signal(str, str)  # a picture's path, "img2img" | "inpaint": start from it
    message = Signal(str)  # something to show in the status bar
    synced = Signal()  # the background scan finished and the grid shows its result
    refreshed = Signal()
    export_ended = Signal(str)  # the export finished, failed or was cancelled; the text says which

    def __init__(self, store: GalleryStore | None = None, output_dirs: tuple[Path, ...] = (),
                 models: Callable[[], list[ModelInfo]] | None = None, parent: QWidget | None = None):
        """``models`` lists the models the window's backend offers (to map another tool's model names)."""
        super().__init__(parent)
        self._models = models or list
        self.store = store if store is not None else open_default_store(output_dirs)
        self._owns_store = store is None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._cancel = threading.Event()
        self._relay = _SyncRelay(self)
        self._relay.finished.connect(self._on_synced)
        self.loader = ThumbnailLoader(self._pool, parent=self)
        self.model = GalleryModel(self.store, self.loader, self)
        self._undo: list[tuple[str, str]] = []
        self._syncing = False
        self._last_sync = 0.0
        self._export_cancel: threading.Event | None = None
        self._export_relay = ExportRelay(self)
        self._export_relay.progress.connect(self._export_progress)
        self._export_relay.finished.connect(self._export_done)
        self._export_relay.failed.connect(self._export_failed)
        self._export_relay.cancelled.connect(lambda: self._export_ended("Export cancelled; nothing was kept."))
        self.open_url = QDesktopServices.openUrl  # replaced in tests
        self._build()
        self.loader.ready.connect(self._maybe_update_preview)
        if self.store.recovered:
            QTimer.singleShot(0, self, lambda: self.message.emit(f"Gallery: {self.store.recovered}."))
        self.loader.failed.connect(self._thumbnail_failed)
        self.refresh()
        self.start_sync(purge=True)
        app = QCoreApplication.instance()
        if app is not None:  # a dock's closeEvent never runs when the main window closes
            app.aboutToQuit.connect(self.shutdown)

    # -- layout ------------------------------------------------------------------------------

    def _build(self) -> None:
        self.search = QLineEdit(placeholderText="Search prompts, negative prompts and models", clearButtonEnabled=True)
        self.model_filter = QComboBox()
        self.scheduler_filter = QComboBox()
        self.favourites_only = QCheckBox("★ Favourites")
        self._debounce = QTimer(self, singleShot=True, interval=150)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(self._debounce.start)
        self.model_filter.currentIndexChanged.connect(self.refresh)
        self.scheduler_filter.currentIndexChanged.connect(self.refresh)
        self.favourites_only.toggled.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.model_filter)
        top.addWidget(self.scheduler_filter)
        top.addWidget(self.favourites_only)

        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(200)
        self.view.setIconSize(QSize(160, 160))
        self.view.setGridSize(QSize(172, 172))
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setDragEnabled(True)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.doubleClicked.connect(lambda _index: self.use_selected_settings())

        self.details = DetailsPane()
        buttons = QHBoxLayout()
        self.use_button = self._button("Use these settings", self.use_selected_settings, buttons)
        self.send_button = self._button("Image to image", lambda: self.send_selected("img2img"), buttons)
        self.send_button.setToolTip("Start a new picture from this one (image to image; inpainting from its context menu)")
        self.favourite_button = self._button("☆ Favourite", self.toggle_favourite, buttons)
        self.copy_image_button = self._button("Copy image", self.copy_image, buttons)
        self.copy_parameters_button = self._button("Copy parameters", self.copy_parameters, buttons)
        self.open_folder_button = self._button("Open folder", self.open_folder, buttons)
        self.delete_button = self._button("Delete", self.delete_selected, buttons)
        self.export_button = self._button("Export…", self.export_selected, buttons)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.details, 1)
        right_layout.addLayout(buttons)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.view)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)

        self.undo_bar = QWidget()
        undo_layout = QHBoxLayout(self.undo_bar)
        undo_layout.setContentsMargins(0, 0, 0, 0)
        self.undo_label = QLabel()
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo_delete)
        undo_layout.addWidget(self.undo_label, 1)
        undo_layout.addWidget(self.undo_button)
        self.undo_bar.hide()
        self.export_bar = QWidget()
        export_layout = QHBoxLayout(self.export_bar)
        export_layout.setContentsMargins(0, 0, 0, 0)
        self.export_progress = QProgressBar()
        self.export_cancel_button = QPushButton("Cancel export")
        self.export_cancel_button.clicked.connect(self.cancel_export)
        export_layout.addWidget(self.export_progress, 1)
        export_layout.addWidget(self.export_cancel_button)
        self.export_bar.hide()
        self.count_label = QLabel()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.undo_bar)
        layout.addWidget(self.export_bar)
        layout.addWidget(self.count_label)
        for text, slot in (("Use these settings", self.use_selected_settings), ("Favourite / not", self.toggle_favourite),
                           ("Send to image to image", lambda: self.send_selected("img2img")),
                           ("Send to inpainting", lambda: self.send_selected("inpaint")),
                           ("Copy image", self.copy_image), ("Copy parameters", self.copy_parameters),
                           ("Open containing folder", self.open_folder), ("Export…", self.export_selected),
                           ("Delete", self.delete_selected)):
            action = QAction(text, self.view)
            action.triggered.connect(lambda _checked=False, slot=slot: slot())
            self.view.addAction(action)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        QShortcut(QKeySequence.StandardKey.Delete, self.view, self.delete_selected)
        QShortcut(QKeySequence.StandardKey.Undo, self, self.undo_delete)
        QShortcut(QKeySequence.StandardKey.Copy, self.view, self.copy_image)
        self.setAcceptDrops(True)
        self._fill_filters()
        self._selection_changed()

    def _button(self, text: str, slot, layout: QHBoxLayout) -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(slot)
        layout.addWidget(button)
        return button

    def _fill_filters(self) -> None:
        for combo, column, everything in ((self.model_filter, "model_id", "All models"),
                                          (self.scheduler_filter, "scheduler", "All schedulers")):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(everything, ALL)
            for value in self.store.distinct(column):
                combo.addItem(value, value)
            found = combo.findData(current)
            combo.setCurrentIndex(max(found, 0))
            combo.blockSignals(False)

    # -- loading -----------------------------------------------------------------------------

    def current_query(self) -> Query:
        return Query(text=self.search.text(), model_id=self.model_filter.currentData() or ALL,
                     scheduler=self.scheduler_filter.currentData() or ALL,
                     favourites_only=self.favourites_only.isChecked())

    def refresh(self) -> None:
        """Run the current search again, keeping the selection where the images are still shown."""
        selected = set(self.selected_paths())
        self.model.set_rows(self.store.query(self.current_query()))
        selection = self.view.selectionModel()
        for path in selected:
            row = self.model.row_of(path)
            if row is not None:
                selection.select(self.model.index(row), QItemSelectionModel.SelectionFlag.Select)
        self._update_count()
        self._selection_changed()
        self.refreshed.emit()

    def _update_count(self) -> None:
        total, shown = self.store.count(), self.model.rowCount()
        self.count_label.setText(f"{shown} of {total} images" if shown != total else f"{total} images")

    def start_sync(self, purge: bool = False) -> bool:
        """Look for images added or removed outside the app, on a worker thread (one scan at a time)."""
        if self._syncing or self._cancel.is_set():
            return False
        self._syncing = True
        self._last_sync = time.monotonic()
        self._pool.start(_SyncJob(self.store, self._relay, self._cancel, purge))
        return True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if time.monotonic() - self._last_sync > RESYNC_AFTER_S:
            self.start_sync()

    def _thumbnail_failed(self, path: str, _reason: str) -> None:
        if not Path(path).exists():  # deleted outside the app while we were running
            self.start_sync()

    def _on_synced(self, report: SyncReport | Exception) -> None:
        self._syncing = False
        if isinstance(report, Exception):
            self.message.emit(f"Gallery: the image folders could not be scanned ({report}).")
        elif report.added or report.removed or report.updated:
            self._fill_filters()
            self.refresh()
        self.synced.emit()

    def show_new(self, image_id: int, path: Path | str) -> None:
        """Show an image the library has just saved and indexed at the top of the grid."""
        self._fill_filters()
        shown = self.store.query(self.current_query(), image_id=image_id)
        if shown:
            self.model.insert_newest(*shown[0])
        self._update_count()

    # -- selection and actions ------------------------------------------------------------------

    def selected_rows(self) -> list[int]:
        return sorted(index.row() for index in self.view.selectionModel().selectedIndexes())

    def selected_paths(self) -> list[str]:
        return [self.model.path(row) for row in self.selected_rows()]

    def select_row(self, row: int) -> None:
        self.view.setCurrentIndex(self.model.index(row))

    def _current_row(self) -> int | None:
        rows = self.selected_rows()
        return rows[0] if rows else None

    def _selection_changed(self, *_args) -> None:
        row = self._current_row()
        record = self.model.record(row) if row is not None else None
        for button in (self.use_button, self.send_button, self.favourite_button, self.copy_image_button,
                       self.copy_parameters_button, self.open_folder_button):
            button.setEnabled(record is not None)
        self.delete_button.setEnabled(bool(self.selected_rows()))
        self.export_button.setEnabled(bool(self.selected_rows()) and self._export_cancel is None)
        self.favourite_button.setText("★ Favourite" if record and record.favourite else "☆ Favourite")
        self.details.show_record(record, self.loader.pixmap(str(record.path)) if record else None)

    def _maybe_update_preview(self, path: str) -> None:
        row = self._current_row()
        if row is not None and self.model.path(row) == path:
            self._selection_changed()

    def use_selected_settings(self) -> None:
        row = self._current_row()
        record = self.model.record(row) if row is not None else None
        if record is None:
            return
        if record.source == "none" or "prompt" not in record.request:
            self.message.emit(f"{record.path.name} carries no generation settings.")
            return
        try:
            recipe = Recipe.from_flat(record.request)
        except (TypeError, ValueError) as exc:
            self.message.emit(f"The settings of {record.path.name} cannot be used: {exc}")
            return
        if record.source != "diffuse-studio":  # another tool's model name: find the model it means
            recipe = recipe.with_(model_id=match_model_id(recipe.model.id, self._models()) or recipe.model.id)
        self.use_settings.emit(recipe)

    def send_selected(self, mode: str) -> None:
        row = self._current_row()
        if row is not None:
            self.send_to_source.emit(self.model.path(row), mode)

    def toggle_favourite(self) -> None:
        row = self._current_row()
        record = self.model.record(row) if row is not None else None
        if record is None:
            return
        self.store.set_favourite(record.id, not record.favourite)
        self.model.invalidate(record.id)
        if self.favourites_only.isChecked():
            self.refresh()
        else:
            self._selection_changed()

    def copy_image(self) -> None:
        row = self._current_row()
        if row is None:
            return
        image = QImage(self.model.path(row))
        if image.isNull():
            self.message.emit("The image could not be read.")
            return
        QGuiApplication.clipboard().setImage(image)
        self.message.emit("Image copied.")

    def copy_parameters(self) -> None:
        row = self._current_row()
        record = self.model.record(row) if row is not None else None
        if record is None:
            return
        QGuiApplication.clipboard().setText(record.parameters or _parameters_text(record))
        self.message.emit("Parameters copied.")

    def open_folder(self) -> None:
        row = self._current_row()
        if row is not None:
            self.open_url(QUrl.fromLocalFile(str(Path(self.model.path(row)).parent)))

    def delete_selected(self) -> None:
        ids = [self.model.image_id(row) for row in self.selected_rows()]
        if not ids:
            return
        if self._undo:
            self.store.purge_deleted(self._undo)  # only the latest deletion can be undone
        self._undo = self.store.delete(ids)
        for _, hidden in self._undo:
            self.loader.forget(hidden)
        self.undo_label.setText(f"Moved {len(ids)} image{'s' if len(ids) != 1 else ''} to the trash.")
        self.undo_bar.show()
        self._fill_filters()
        self.refresh()

    def undo_delete(self) -> None:
        if not self._undo:
            return
        self.store.undo_delete(self._undo)
        self._undo = []
        self.undo_bar.hide()
        self._fill_filters()
        self.refresh()

    # -- export --------------------------------------------------------------------------------

    def export_selected(self, options: ExportOptions | None = None) -> bool:
        """Export the selected images (asking how, unless ``options`` are given); False if not started."""
        sources = self.selected_paths()
        if not sources or self._export_cancel is not None:
            return False
        if options is None:
            dialog = ExportDialog(len(sources), Path(sources[0]).parent.parent.parent, self)
            if dialog.exec() != ExportDialog.DialogCode.Accepted:
                return False
            options = dialog.options()
        self._export_cancel = threading.Event()
        self.export_progress.setRange(0, len(sources))
        self.export_progress.setValue(0)
        self.export_bar.show()
        self.export_button.setEnabled(False)
        self._pool.start(ExportJob(sources, options, self._export_relay, self._export_cancel))
        return True

    def cancel_export(self) -> None:
        if self._export_cancel is not None:
            self._export_cancel.set()

    def _export_progress(self, done: int, total: int) -> None:
        self.export_progress.setRange(0, total)
        self.export_progress.setValue(done)

    def _export_done(self, result: ExportResult) -> None:
        images = sum(1 for f in result.files if not f.startswith(("manifest.", "contact_sheet")))
        self._export_ended(f"Exported {images} image{'s' if images != 1 else ''} to {result.destination}.")

    def _export_failed(self, reason: str) -> None:
        self._export_ended(reason)

    def _export_ended(self, text: str) -> None:
        self._export_cancel = None
        self.export_bar.hide()
        self._selection_changed()
        self.message.emit(text)
        self.export_ended.emit(text)

    # -- dropping a foreign image restores its settings -------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and event.source() is None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.restore_from_file(url.toLocalFile())
                event.acceptProposedAction()
                return

    def restore_from_file(self, path: str | Path) -> bool:
        try:
            recipe = recipe_from_image_file(path, models=self._models())
        except MetadataError as exc:
            self.message.emit(str(exc))
            return False
        self.use_settings.emit(recipe)
        return True

    # -- shutting down ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the workers, wait for them, drop undo-able deleted files, close the index."""
        if self._cancel.is_set():
            return
        self._cancel.set()
        self.cancel_export()
        self._pool.clear()
        self._pool.waitForDone()
        if self._undo:
            self.store.purge_deleted(self._undo)
            self._undo = []
        if self._owns_store:
            self.store.close()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)


def _parameters_text(record: ImageRecord) -> str:
    """An A1111 text for an image that has none (e.g. a ComfyUI graph), from its recipe."""
    try:
        recipe = Recipe.from_flat(record.request)
    except (TypeError, ValueError):
        return record.prompt
    return format_parameters(recipe, width=record.width, height=record.height, model_hash=record.model_hash)
