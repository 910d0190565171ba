"""The details pane: a bigger preview and every parameter of the selected image."""

from __future__ import annotations

import html
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from desktop_app.gallery.fields import applicable_fields
from desktop_app.gallery.readers import SOURCE_NAMES
from desktop_app.gallery.readers.common import NO_CONTROL
from desktop_app.gallery.store import ImageRecord
from desktop_app.gui.gallery.grid import scaled_thumbnail

_LABELS = [
    ("prompt", "Prompt"), ("negative_prompt", "Negative prompt"), ("model_id", "Model"),
    ("scheduler", "Scheduler"), ("steps", "Steps"), ("guidance_scale", "Guidance scale"), ("seed", "Seed"),
    ("width", "Width"), ("height", "Height"), ("eta", "η (DDIM)"), ("ddpm_variance", "DDPM variance"),
    ("classifier_target", "Classifier target"), ("classifier_scale", "Classifier scale"),
    ("noise_seed_delta", "Noise seed delta (ENSD)"),
]


def details_html(record: ImageRecord, notes: dict[str, str] | None = None) -> str:
    """Every parameter that applies to the image, who made it, and (for another tool's image)
    ``notes``: what it set that has no control here."""
    rows = []
    request = applicable_fields(record.request)
    for key, label in _LABELS:
        value = request.get(key)
        if value in (None, "") and key not in ("prompt",):
            continue
        rows.append((label, str(value)))
    if record.model_hash:
        rows.append(("Model hash", record.model_hash))
    rows.append(("Made by", SOURCE_NAMES.get(record.source, record.source)))
    rows.append(("Created", datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")))
    rows.append(("File", str(record.path)))
    if record.problems:
        rows.append(("Problems", record.problems))
    if notes:
        rows.append(("No control here", "\n".join(f"{key}: {plain_note(value)}" for key, value in notes.items())))
    if record.source not in ("diffuse-studio", "none") and record.parameters:
        rows.append(("As written", record.parameters))
    body = "".join(
        f"<tr><td valign='top'><b>{html.escape(label)}</b></td><td>{html.escape(value).replace(chr(10), '<br>')}</td></tr>"
        for label, value in rows
    )
    return f"<table cellspacing='4'>{body}</table>"


def plain_note(note: object) -> str:
    """A reader's note without its closing "; no control here" (the heading says it)."""
    return str(note).removesuffix(f"; {NO_CONTROL}")


class DetailsPane(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.preview = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(160)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.preview)
        layout.addWidget(self.text, 1)
        self.show_record(None)

    def show_record(self, record: ImageRecord | None, pixmap: QPixmap | None = None,
                    notes: dict[str, str] | None = None) -> None:
        if record is None:
            self.preview.clear()
            self.text.setHtml("<i>Select an image to see how it was made.</i>")
            return
        self.text.setHtml(details_html(record, notes))
        if pixmap is not None and not pixmap.isNull():
            self.preview.setPixmap(scaled_thumbnail(pixmap, 240))  # a 64×64 image: its pixels, not a blur
        else:
            self.preview.clear()
