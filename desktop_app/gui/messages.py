"""Non-modal messages shown above the canvas: errors stay until closed, nothing blocks the window."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget


class MessageBar(QFrame):
    closed = Signal()

    def __init__(self, text: str, kind: str = "error", button: str = "✕", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.setProperty("kind", kind)
        self.kind = kind
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText if text.lstrip().startswith("<") else Qt.TextFormat.PlainText)
        self.label.setOpenExternalLinks(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        close = QToolButton()
        close.setText(button)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)

    def text(self) -> str:
        return self.label.text()

    def dismiss(self) -> None:
        self.hide()
        self.closed.emit()
        self.deleteLater()


class MessageArea(QWidget):
    """A column of message bars; the oldest go when there are more than ``limit``."""

    def __init__(self, limit: int = 4, parent: QWidget | None = None):
        super().__init__(parent)
        self.limit = limit
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._bars: list[MessageBar] = []

    def show_message(self, text: str, kind: str = "error", button: str = "✕") -> MessageBar:
        bar = MessageBar(text, kind, button, self)
        bar.closed.connect(lambda: self._bars.remove(bar) if bar in self._bars else None)
        self._bars.append(bar)
        self._layout.addWidget(bar)
        while len(self._bars) > self.limit:
            self._bars[0].dismiss()
        return bar

    def messages(self, kind: str | None = None) -> list[str]:
        return [b.text() for b in self._bars if kind is None or b.kind == kind]
