"""Light and dark themes on the Fusion style; "system" follows the desktop's colour scheme."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

DARK = {
    QPalette.ColorRole.Window: "#202124", QPalette.ColorRole.WindowText: "#e8eaed",
    QPalette.ColorRole.Base: "#17181a", QPalette.ColorRole.AlternateBase: "#26282b",
    QPalette.ColorRole.ToolTipBase: "#2d2f33", QPalette.ColorRole.ToolTipText: "#e8eaed",
    QPalette.ColorRole.Text: "#e8eaed", QPalette.ColorRole.Button: "#2b2d31",
    QPalette.ColorRole.ButtonText: "#e8eaed", QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Highlight: "#3b82f6", QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#7cb4ff", QPalette.ColorRole.PlaceholderText: "#8a8f98",
    QPalette.ColorRole.Mid: "#3a3d42", QPalette.ColorRole.Dark: "#111214", QPalette.ColorRole.Light: "#3a3d42",
}
LIGHT = {
    QPalette.ColorRole.Window: "#f3f4f6", QPalette.ColorRole.WindowText: "#1f2328",
    QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f0f1f3",
    QPalette.ColorRole.ToolTipBase: "#ffffdc", QPalette.ColorRole.ToolTipText: "#1f2328",
    QPalette.ColorRole.Text: "#1f2328", QPalette.ColorRole.Button: "#e9ebee",
    QPalette.ColorRole.ButtonText: "#1f2328", QPalette.ColorRole.BrightText: "#c00000",
    QPalette.ColorRole.Highlight: "#2563eb", QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#1d4ed8", QPalette.ColorRole.PlaceholderText: "#6b7280",
    QPalette.ColorRole.Mid: "#c7cbd1", QPalette.ColorRole.Dark: "#9aa0a6", QPalette.ColorRole.Light: "#ffffff",
}
STYLE = """
QLabel#hint { color: palette(placeholder-text); }
QFrame#messageBar { border-radius: 4px; padding: 2px; }
QFrame#messageBar[kind="error"] { background: rgba(229, 72, 77, 0.18); }
QFrame#messageBar[kind="info"] { background: rgba(59, 130, 246, 0.16); }
QFrame#messageBar[kind="warning"] { background: rgba(245, 158, 11, 0.20); }
QPushButton#generate { font-weight: bold; padding: 6px 18px; }
"""


_FALLBACK_DARK: bool | None = None


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None:
        value = scheme()
        if value == Qt.ColorScheme.Dark:
            return True
        if value == Qt.ColorScheme.Light:
            return False
    global _FALLBACK_DARK
    if _FALLBACK_DARK is None:  # read once, before this module replaces the palette
        _FALLBACK_DARK = QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128
    return _FALLBACK_DARK


def apply_theme(app: QApplication, theme: str = "system") -> bool:
    """Apply "light", "dark" or "system"; returns True when the result is dark."""
    dark = system_is_dark() if theme == "system" else theme == "dark"
    app.setStyle("Fusion")
    palette = QPalette()
    for role, colour in (DARK if dark else LIGHT).items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b6f76" if dark else "#a0a4aa"))
    app.setPalette(palette)
    app.setStyleSheet(STYLE)
    return dark
