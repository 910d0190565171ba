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

EXPORT_NAME = "Diffuse Studio export"


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
    """How to export; ``remembered`` (``memory()`` of an earlier dialog) fills in the last choices."""

    def __init__(self, count: int, start_folder: Path, parent: QWidget | None = None, remembered: dict | None = None):
        super().__init__(parent)
        remembered = remembered or {}
        self.setWindowTitle(f"Export {count} image{'s' if count != 1 else ''}")
        folder = Path(remembered.get("folder") or start_folder)
        self.destination = QLineEdit(str(folder / EXPORT_NAME))
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
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Export to", row)
        form.addRow("As", kind)
        form.addRow("Format", self.format)
        form.addRow("", self.strip)
        form.addRow("", self.manifest)
        form.addRow("", self.contact_sheet)
        form.addRow("File names", self.template)
        form.addRow("", hint)
        form.addRow(self.buttons)
        self._remember(remembered)
        self.to_zip.toggled.connect(self._name_for_kind)

    def _remember(self, remembered: dict) -> None:
        index = self.format.findData(remembered.get("format"))
        if index >= 0:
            self.format.setCurrentIndex(index)
        for box, key in ((self.strip, "strip_metadata"), (self.manifest, "manifest"), (self.contact_sheet, "contact_sheet")):
            box.setChecked(bool(remembered.get(key, False)))
        if isinstance(remembered.get("template"), str) and remembered["template"]:
            self.template.setText(remembered["template"])
        if remembered.get("as_zip"):
            self.to_zip.setChecked(True)
            self._name_for_kind(True)

    def _name_for_kind(self, as_zip: bool) -> None:
        """A ZIP gets a ``.zip`` name, a folder loses it."""
        text = self.destination.text().strip()
        if as_zip and not text.lower().endswith(".zip"):
            self.destination.setText(text.rstrip("/\\") + ".zip")
        elif not as_zip and text.lower().endswith(".zip"):
            self.destination.setText(text[:-4])

    def _browse(self) -> None:
        if self.to_zip.isChecked():
            chosen, _ = QFileDialog.getSaveFileName(self, "Export to ZIP file", self.destination.text(), "ZIP files (*.zip)")
        else:
            chosen = QFileDialog.getExistingDirectory(self, "Export to folder", self.destination.text())
        if chosen:
            self.destination.setText(chosen)
            self._name_for_kind(self.to_zip.isChecked())

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

    def memory(self) -> dict:
        """The choices to offer next time: the folder the export went into, and the options."""
        options = self.options()
        return {"folder": str(options.destination.parent), "as_zip": options.as_zip, "format": options.format,
                "strip_metadata": options.strip_metadata, "manifest": options.manifest,
                "contact_sheet": options.contact_sheet, "template": options.template}
