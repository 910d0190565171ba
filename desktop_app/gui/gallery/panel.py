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
    Qt,
    QThreadPool,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.models import ModelInfo
from desktop_app.core.recipe import Recipe
from desktop_app.gallery.a1111 import format_parameters
from desktop_app.gallery.export import ExportOptions, ExportResult
from desktop_app.gallery.metadata import (
    MetadataError,
    match_model_id,
    read_metadata,
    settings_from_image_file,
)
from desktop_app.gallery.store import GalleryStore, ImageRecord, Query, SyncReport, open_default_store
from desktop_app.gallery.thumbnails import prune_thumbnails
from desktop_app.gui.gallery.details import DetailsPane, plain_note
from desktop_app.gui.gallery.export_dialog import ExportDialog, ExportJob, ExportRelay
from desktop_app.gui.gallery.grid import DEFAULT_SIDE, MAX_SIDE, MIN_SIDE, GalleryGrid
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
    not_restored = Signal(str)  # after use_settings from another tool's image: what has no control here
    export_chosen = Signal(dict)  # the export dialog's choices, to remember (``export_memory``)
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
        self.export_memory: dict = {}  # the export dialog's last choices (the window keeps them in the settings)
        self._notes_cache: dict[tuple[str, float], dict[str, str]] = {}
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

        self.view = GalleryGrid()
        self.view.setModel(self.model)
        self.empty_label = self.view.empty_label
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.doubleClicked.connect(lambda _index: self.use_selected_settings())

        self.details = DetailsPane()
        buttons = QGridLayout()  # two columns, so the pane stays narrow and the grid gets the room
        self.use_button = self._button("Use these settings", self.use_selected_settings, buttons, 0, 0)
        self.export_button = self._button("Export…", self.export_selected, buttons, 0, 1)
        self.send_button = self._button("Image to image", lambda: self.send_selected("img2img"), buttons, 1, 0)
        self.favourite_button = self._button("☆ Favourite", self.toggle_favourite, buttons, 1, 1)
        self.copy_image_button = self._button("Copy image", self.copy_image, buttons, 2, 0)
        self.copy_parameters_button = self._button("Copy parameters", self.copy_parameters, buttons, 2, 1)
        self.open_folder_button = self._button("Open folder", self.open_folder, buttons, 3, 0)
        self.delete_button = self._button("Delete", self.delete_selected, buttons, 3, 1)
        self.use_button.setToolTip("Put this image's prompt and settings into the Create tab's controls (double-click)")
        self.send_button.setToolTip("Start a new picture from this one (image to image; inpainting from its context menu)")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.details, 1)
        right_layout.addLayout(buttons)
        right.setMinimumWidth(240)

        self.splitter = splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.view)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        for side in (0, 1):  # neither half snaps shut when dragged
            splitter.setCollapsible(side, False)

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
        self.thumbnail_size = QSlider(Qt.Orientation.Horizontal)
        self.thumbnail_size.setRange(MIN_SIDE, MAX_SIDE)
        self.thumbnail_size.setValue(DEFAULT_SIDE)
        self.thumbnail_size.setMaximumWidth(160)
        self.thumbnail_size.setToolTip("Thumbnail size")
        self.thumbnail_size.setAccessibleName("Thumbnail size")
        self.thumbnail_size.valueChanged.connect(self.view.set_side)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count_label, 1)
        bottom.addWidget(QLabel("Size"))
        bottom.addWidget(self.thumbnail_size)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.undo_bar)
        layout.addWidget(self.export_bar)
        layout.addLayout(bottom)
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

    def _button(self, text: str, slot, layout: QGridLayout, row: int, column: int) -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(lambda _checked=False: slot())  # clicked(bool) must not reach the slot's arguments
        layout.addWidget(button, row, column)
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
        text = f"{shown} of {total} images" if shown != total else f"{total} image{'s' if total != 1 else ''}"
        selected = len(self.selected_rows())
        self.count_label.setText(text + (f" · {selected} selected" if selected else ""))
        self.view.show_empty("" if shown else self._empty_text(total))

    def _empty_text(self, total: int) -> str:
        if not total:
            return ("No images yet. Pictures you make on the Create tab appear here. To use the settings of an "
                    "image from another app, drop it onto the window.")
        query = self.current_query()
        wanted = [f"“{query.text.strip()}”"] if query.text.strip() else []
        wanted += [v for v in (query.model_id, query.scheduler) if v]
        wanted += ["favourites"] if query.favourites_only else []
        return f"No image matches {', '.join(wanted) or 'these filters'}. Clear the search or the filters to see all {total}."

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
        self.details.show_record(record, self.loader.pixmap(str(record.path)) if record else None,
                                 self._notes(record) if record else None)
        self._update_count()

    def _notes(self, record: ImageRecord) -> dict[str, str]:
        """What another tool's image set that has no control here (read again from the file: the
        index keeps only the recipe)."""
        if record.source in ("diffuse-studio", "none"):
            return {}
        key = (str(record.path), record.created)
        if key not in self._notes_cache:
            if len(self._notes_cache) > 200:
                self._notes_cache.clear()
            self._notes_cache[key] = {k: str(v) for k, v in read_metadata(record.path).unknown.items()}
        return self._notes_cache[key]

    def _say_not_restored(self, name: str, notes: dict[str, str]) -> None:
        if notes:
            listed = "; ".join(f"{key}: {plain_note(value)}" for key, value in notes.items())
            self.not_restored.emit(f"From {name}, not restored (no control here): {listed}")

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
        self._say_not_restored(record.path.name, self._notes(record))

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
        if row is None:
            return
        folder = Path(self.model.path(row)).parent
        if not self.open_url(QUrl.fromLocalFile(str(folder))):
            QGuiApplication.clipboard().setText(str(folder))
            self.message.emit(f"The folder could not be opened (no file manager is set up to open folders); "
                              f"its path is copied: {folder}")

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
            dialog = ExportDialog(len(sources), Path(sources[0]).parent.parent.parent, self, self.export_memory)
            if dialog.exec() != ExportDialog.DialogCode.Accepted:
                return False
            options = dialog.options()
            self.export_memory = dialog.memory()
            self.export_chosen.emit(dict(self.export_memory))
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
            recipe, meta = settings_from_image_file(path, models=self._models())
        except MetadataError as exc:
            self.message.emit(str(exc))
            return False
        self.use_settings.emit(recipe)
        self._say_not_restored(Path(path).name, {k: str(v) for k, v in meta.unknown.items()})
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
