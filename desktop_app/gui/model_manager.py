"""The model manager: every model, LoRA, VAE and embedding the backend offers, and what goes with them
in the window (hash progress, other apps' folders, the ε/v question of an SD 2.x file).

- ``ModelManagerDialog`` lists the catalog by kind: family, size, hash, the folder it came from, and
  the files that cannot be used with the reason; offline folders are shown as such. For a file with
  a known hash it shows civitai's by-hash address as a link to copy (the app fetches nothing).
- ``ModelTools`` (one per window, ``install_model_tools``) keeps the hashes the backend reports,
  shows hashing progress in the status bar, offers other apps' folders on the first start (asking,
  never crawling: ``core.app_roots.candidate_roots``), and answers a job that failed because an
  SD 2.x file does not say what it predicts: the user picks ε or v once, the choice is kept
  (``core.model_choices``) and the job runs again.

Only the backend protocol's catalog and torch-free ``core`` modules are used.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.app_roots import candidate_roots, detect_app
from desktop_app.core.model_choices import PREDICTIONS, remember_prediction
from desktop_app.core.models import ADD_ON_LABELS, ModelCatalog

if TYPE_CHECKING:
    from desktop_app.gui.window import MainWindow

CIVITAI_BY_HASH = "https://civitai.com/api/v1/model-versions/by-hash/{}"
COLUMNS = ("Kind", "Name", "Family", "Size", "Hash", "Found in", "Problem")


def civitai_link(sha256: str) -> str:
    """civitai's address for the model version with this file hash (its API; nothing is fetched here)."""
    return CIVITAI_BY_HASH.format(sha256.upper()) if sha256 else ""


def human_size(size: int) -> str:
    if not size:
        return ""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


@dataclasses.dataclass(frozen=True)
class Row:
    kind: str
    name: str
    family: str
    size: int
    sha256: str
    source: str
    problem: str
    path: str


def catalog_rows(catalog: ModelCatalog, hashes: dict[str, str]) -> list[Row]:
    """The manager's rows: models, then LoRAs, VAEs and embeddings, then the files that cannot be used."""
    known = {**catalog.hashes, **hashes}
    rows = []
    for info in catalog.models:
        is_file = Path(info.path).is_file()
        kind = ("Checkpoint" if is_file else "Model folder") + (f" ({info.kind})" if info.kind != "txt2img" else "")
        rows.append(Row(kind, info.name, info.family, info.size, known.get(str(info.path), ""), info.source, "",
                        str(info.path)))
    for add_on in catalog.add_ons:
        label = ADD_ON_LABELS.get(add_on.kind, add_on.kind)
        problem = f"a LyCORIS {add_on.variant.upper()}: not supported" if add_on.variant in ("loha", "lokr") else ""
        rows.append(Row(label, add_on.name, add_on.family or "any", add_on.size, known.get(str(add_on.path), ""),
                        add_on.source, problem, str(add_on.path)))
    for error in catalog.errors:
        rows.append(Row("Cannot be used", error.path.name, "", 0, "", str(error.path.parent), error.problem,
                        str(error.path)))
    return rows


class ModelManagerDialog(QDialog):
    def __init__(self, catalog: ModelCatalog, hashes: dict[str, str] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setObjectName("modelManager")
        self.resize(980, 520)
        self.hashes = dict(hashes or {})
        self.catalog = catalog
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.offline = QLabel()
        self.offline.setObjectName("hint")
        self.offline.setWordWrap(True)
        self.link = QLineEdit()
        self.link.setReadOnly(True)
        self.link.setPlaceholderText("Select a file with a known hash for its civitai address")
        self.link.setToolTip("civitai finds a model version by its file hash; copy the address into a browser")
        self.copy_link = QToolButton()
        self.copy_link.setText("Copy link")
        self.copy_link.setEnabled(False)
        self.add_root_button = QPushButton("Add another app's folder…")
        self.add_root_button.setToolTip("An AUTOMATIC1111/Forge, ComfyUI or InvokeAI folder, or a Hugging Face cache: "
                                        "its models are used in place, never copied")
        self.rescan_button = QPushButton("Rescan")
        link_row = QHBoxLayout()
        link_row.addWidget(QLabel("civitai:"))
        link_row.addWidget(self.link, 1)
        link_row.addWidget(self.copy_link)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.add_root_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.rescan_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.offline)
        layout.addLayout(link_row)
        layout.addWidget(buttons)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.copy_link.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.link.text()))
        self.set_catalog(catalog)

    def set_catalog(self, catalog: ModelCatalog) -> None:
        self.catalog = catalog
        rows = catalog_rows(catalog, self.hashes)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            cells = (row.kind, row.name, row.family, human_size(row.size), row.sha256[:10], row.source, row.problem)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, row)
                item.setToolTip(row.path if c != 6 else row.problem)
                if c == 3:
                    item.setData(Qt.ItemDataRole.UserRole + 1, row.size)
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        offline = catalog.offline
        self.offline.setText("Offline (not there now; kept, and used again when they are back): " + "; ".join(offline)
                             if offline else "")
        self.offline.setVisible(bool(offline))
        self._on_selection()

    def set_hash(self, path: str, sha256: str) -> None:
        self.hashes[path] = sha256
        self.set_catalog(self.catalog)

    def rows(self) -> list[Row]:
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(self.table.rowCount())]

    def select_path(self, path: str) -> None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole).path == path:
                self.table.selectRow(r)
                return

    def _on_selection(self) -> None:
        items = self.table.selectedItems()
        row = items[0].data(Qt.ItemDataRole.UserRole) if items else None
        self.link.setText(civitai_link(row.sha256) if row is not None else "")
        self.copy_link.setEnabled(bool(self.link.text()))


class ModelTools(QObject):
    """The window's model chores; see the module's description."""

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.hashes: dict[str, str] = {}
        self.dialog: ModelManagerDialog | None = None
        bridge = window.bridge
        bridge.model_hashed.connect(self._on_hashed)
        bridge.hash_progress.connect(self._on_hash_progress)
        bridge.models_changed.connect(self._on_models)
        bridge.job_question.connect(self._on_question)

    # ---- the manager ----------------------------------------------------------------------------
    def open_manager(self) -> ModelManagerDialog:
        if self.dialog is None:
            self.dialog = ModelManagerDialog(self.window.backend.models(), self.hashes, self.window)
            self.dialog.add_root_button.clicked.connect(self.choose_app_root)
            self.dialog.rescan_button.clicked.connect(self.window.refresh_models)
        self.dialog.show()
        return self.dialog

    def _on_models(self, catalog: ModelCatalog) -> None:
        if self.dialog is not None:
            self.dialog.set_catalog(catalog)

    def _on_hashed(self, model_id: str, path: str, sha256: str) -> None:
        if not sha256:
            return
        self.hashes[path] = sha256
        self.window.statusBar().showMessage(f"Model hash of {Path(path).name}: {sha256[:10]}", 6000)
        if self.dialog is not None:
            self.dialog.set_hash(path, sha256)

    def _on_hash_progress(self, model_id: str, path: str, fraction: float) -> None:
        self.window.statusBar().showMessage(f"Hashing {Path(path).name} (its model hash): {fraction:.0%}", 3000)

    # ---- other apps' folders --------------------------------------------------------------------
    def add_app_roots(self, roots: list[str]) -> None:
        settings = dataclasses.replace(self.window.settings)
        settings.app_roots = [*settings.app_roots, *(r for r in roots if r not in settings.app_roots)]
        settings.app_roots_offered = True
        self.window.apply_settings(settings)

    def choose_app_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Another app's folder (used in place, never copied)")
        if not folder:
            return
        if detect_app(folder) is None:
            self.window.messages.show_message(f"{folder} is not an AUTOMATIC1111, ComfyUI or InvokeAI folder; its model "
                                              "files are listed as in a model folder.", "info")
        self.add_app_roots([folder])

    def offer_app_roots(self) -> None:
        """First start: offer the other apps' folders found in the usual places (asked once)."""
        settings = self.window.settings
        if settings.app_roots_offered:
            return
        found = [r for r in candidate_roots() if str(r.path) not in settings.app_roots]
        if not found:
            return
        names = ", ".join(f"{r.app} ({r.path})" for r in found)
        bar = self.window.messages.show_message(
            f"Models of other apps were found: {names}. Use them here? They are read in place and never copied.",
            "info", "Not now")
        use = QPushButton("Use them")
        use.setObjectName("useAppRoots")
        bar.layout().insertWidget(1, use)
        use.show()

        def accept() -> None:
            self.add_app_roots([str(r.path) for r in found])
            bar.dismiss()

        def decline() -> None:
            if not self.window.settings.app_roots_offered:
                self.window.settings.app_roots_offered = True
                self.window.save_settings()

        use.clicked.connect(accept)
        bar.closed.connect(decline)

    # ---- an SD 2.x file that does not say what it predicts ------------------------------------------
    def _on_question(self, job_id: str, kind: str) -> None:
        recipe = self.window.requests.get(job_id)
        info = next((m for m in self.window.panel.models() if recipe and m.id == recipe.model.id), None)
        if kind != "prediction" or recipe is None or info is None:
            return
        bar = self.window.messages.show_message(
            f"{Path(info.path).name} does not say what it predicts. Which is it? (Asked once for this file.)", "info")
        for prediction, label in PREDICTIONS.items():
            button = QPushButton(label.split(";")[0])
            button.setToolTip(label)
            button.setObjectName(f"prediction-{prediction}")
            button.clicked.connect(lambda _=False, p=prediction: self._answer(bar, info, recipe, job_id, p))
            bar.layout().insertWidget(bar.layout().count() - 1, button)
            button.show()

    def _answer(self, bar, info, recipe, job_id: str, prediction: str) -> None:
        remember_prediction(info.path, prediction)
        bar.dismiss()
        self.window.refresh_models()  # its native size and schedule follow the answer
        options = self.window.job_options.get(job_id)
        if options is None:
            return
        new_id = self.window.bridge.submit(recipe, options, self.window.settings.output_path)
        self.window.requests[new_id] = recipe
        self.window.job_options[new_id] = options
        self.window.queue.add(new_id, recipe)
        if not self.window.bridge.isRunning():
            self.window.start_engine()


def install_model_tools(window: MainWindow) -> ModelTools:
    """Give the window its model tools (after its bridge exists); the menus call them."""
    tools = ModelTools(window)
    window.model_tools = tools
    window.panel.vae.memory = window.settings.model_vaes
    if not window.settings.first_run_done:
        tools.offer_app_roots()
    return tools
