"""Export: the options dialog, and the worker that runs ``export_images`` off the GUI thread."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QWidget,
)

from desktop_app.gallery.export import (
    DEFAULT_TEMPLATE,
    FORMATS,
    ExportCancelled,
    ExportError,
    ExportOptions,
    export_images,
)
from desktop_app.gallery.filenames import TEMPLATE_FIELDS


class ExportRelay(QObject):
    progress = Signal(int, int)
    finished = Signal(object)  # ExportResult
    failed = Signal(str)
    cancelled = Signal()


class ExportJob(QRunnable):
    """Runs one export; ends with exactly one of ``finished``, ``failed`` or ``cancelled``."""

    def __init__(self, sources: list[str], options: ExportOptions, relay: ExportRelay, cancel: threading.Event):
        super().__init__()
        self.sources, self.options, self.relay, self.cancel = sources, options, relay, cancel

    def run(self) -> None:
        try:
            result = export_images(self.sources, self.options, progress=self.relay.progress.emit, cancel=self.cancel)
        except ExportCancelled:
            self.relay.cancelled.emit()
        except ExportError as exc:
            self.relay.failed.emit(exc.strerror or str(exc))
        except Exception as exc:  # a bug must still end the job with a message, not a hang
            self.relay.failed.emit(f"The export failed: {type(exc).__name__}: {exc}")
        else:
            self.relay.finished.emit(result)


class ExportDialog(QDialog):
    def __init__(self, count: int, start_folder: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Export {count} image{'s' if count != 1 else ''}")
        self.destination = QLineEdit(str(start_folder / "Diffuse Studio export"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.destination, 1)
        row.addWidget(browse)
        self.to_folder = QRadioButton("Folder", checked=True)
        self.to_zip = QRadioButton("ZIP file")
        kind = QHBoxLayout()
        kind.addWidget(self.to_folder)
        kind.addWidget(self.to_zip)
        self.format = QComboBox()
        for key, label in (("png", "PNG (all metadata kept)"), ("jpeg", "JPEG (parameters in EXIF)"),
                           ("webp", "WebP (parameters in EXIF)")):
            self.format.addItem(label, key)
        self.strip = QCheckBox("Strip metadata (prompt and settings are not written into the files)")
        self.manifest = QCheckBox("Add a manifest (manifest.json and manifest.csv)")
        self.contact_sheet = QCheckBox("Add a contact sheet (a grid with captions)")
        self.template = QLineEdit(DEFAULT_TEMPLATE)
        hint = QLabel("Fields: " + ", ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS))
        hint.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Export to", row)
        form.addRow("As", kind)
        form.addRow("Format", self.format)
        form.addRow("", self.strip)
        form.addRow("", self.manifest)
        form.addRow("", self.contact_sheet)
        form.addRow("File names", self.template)
        form.addRow("", hint)
        form.addRow(buttons)

    def _browse(self) -> None:
        if self.to_zip.isChecked():
            chosen, _ = QFileDialog.getSaveFileName(self, "Export to ZIP file", self.destination.text(), "ZIP files (*.zip)")
        else:
            chosen = QFileDialog.getExistingDirectory(self, "Export to folder", self.destination.text())
        if chosen:
            self.destination.setText(chosen)

    def options(self) -> ExportOptions:
        fmt = self.format.currentData()
        assert fmt in FORMATS
        return ExportOptions(
            destination=Path(self.destination.text()).expanduser(),
            as_zip=self.to_zip.isChecked(),
            format=fmt,
            strip_metadata=self.strip.isChecked(),
            manifest=self.manifest.isChecked(),
            contact_sheet=self.contact_sheet.isChecked(),
            template=self.template.text() or DEFAULT_TEMPLATE,
        )
