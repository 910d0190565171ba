"""The details pane: a bigger preview and every parameter of the selected image."""

from __future__ import annotations

import html
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from desktop_app.gallery.store import ImageRecord

_LABELS = [
    ("prompt", "Prompt"), ("negative_prompt", "Negative prompt"), ("model_id", "Model"),
    ("scheduler", "Scheduler"), ("steps", "Steps"), ("guidance_scale", "Guidance scale"), ("seed", "Seed"),
    ("width", "Width"), ("height", "Height"), ("eta", "η (DDIM)"), ("ddpm_variance", "DDPM variance"),
    ("classifier_target", "Classifier target"), ("classifier_scale", "Classifier scale"),
]
_SOURCES = {"diffuse-studio": "Diffuse Studio", "a1111": "AUTOMATIC1111", "comfyui": "ComfyUI",
            "invokeai": "InvokeAI", "none": "unknown"}


def details_html(record: ImageRecord) -> str:
    rows = []
    request = record.request
    for key, label in _LABELS:
        value = request.get(key)
        if value in (None, "") and key not in ("prompt",):
            continue
        rows.append((label, str(value)))
    if record.model_hash:
        rows.append(("Model hash", record.model_hash))
    rows.append(("Made by", _SOURCES.get(record.source, record.source)))
    rows.append(("Created", datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")))
    rows.append(("File", str(record.path)))
    if record.problems:
        rows.append(("Problems", record.problems))
    if record.source not in ("diffuse-studio", "none") and record.parameters:
        rows.append(("As written", record.parameters))  # keys we have no control for (Clip skip, LoRAs…)
    body = "".join(
        f"<tr><td valign='top'><b>{html.escape(label)}</b></td><td>{html.escape(value).replace(chr(10), '<br>')}</td></tr>"
        for label, value in rows
    )
    return f"<table cellspacing='4'>{body}</table>"


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

    def show_record(self, record: ImageRecord | None, pixmap: QPixmap | None = None) -> None:
        if record is None:
            self.preview.clear()
            self.text.setHtml("<i>Select an image to see how it was made.</i>")
            return
        self.text.setHtml(details_html(record))
        if pixmap is not None and not pixmap.isNull():
            self.preview.setPixmap(pixmap.scaled(240, 240, Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))
        else:
            self.preview.clear()
