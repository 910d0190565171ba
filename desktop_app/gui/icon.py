"""The window icon: the packaged SVG/PNG when present, else one drawn here."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QLinearGradient, QPainter, QPixmap

from desktop_app.core import paths


def _drawn(side: int) -> QPixmap:
    pixmap = QPixmap(side, side)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    gradient = QLinearGradient(0, 0, side, side)
    gradient.setColorAt(0, QColor("#1e3a8a"))
    gradient.setColorAt(1, QColor("#7c3aed"))
    p.setBrush(gradient)
    p.setPen(Qt.PenStyle.NoPen)
    p.drawRoundedRect(QRectF(0, 0, side, side), side * 0.2, side * 0.2)
    p.setBrush(QColor("#f59e0b"))
    p.drawEllipse(QRectF(side * 0.18, side * 0.22, side * 0.38, side * 0.38))
    p.setBrush(QColor("#38bdf8"))
    p.drawRect(QRectF(side * 0.46, side * 0.46, side * 0.34, side * 0.34))
    p.end()
    return pixmap


def app_icon() -> QIcon:
    for name in ("diffuse-studio.svg", "diffuse-studio.png"):
        for folder in (("icons",), ()):
            try:
                return QIcon(str(paths.resource_path(*folder, name)))
            except FileNotFoundError:
                continue
    icon = QIcon()
    for side in (16, 32, 64, 128, 256):
        icon.addPixmap(_drawn(side))
    return icon
