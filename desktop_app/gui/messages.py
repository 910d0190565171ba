"""Non-modal messages shown above the canvas: errors stay until closed, nothing blocks the window.

A message already shown is not shown twice (the one there comes to the front instead), and an
informational one goes away by itself after a while, unless the mouse rests on it or it asks for
an answer (a button of its own, like the welcome's "Got it")."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

DISMISS = "✕"


class MessageBar(QFrame):
    closed = Signal()

    def __init__(self, text: str, kind: str = "error", button: str = DISMISS, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.setProperty("kind", kind)
        self.kind = kind
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText if text.lstrip().startswith("<") else Qt.TextFormat.PlainText)
        self.label.setOpenExternalLinks(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.close_button = close = QToolButton()
        close.setText(button)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        self._seconds = 0.0
        self.timer = QTimer(self, singleShot=True)
        self.timer.timeout.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)

    def text(self) -> str:
        return self.label.text()

    def add_button(self, text: str, slot) -> QToolButton:
        """A button that answers the message (then it goes); a bar with one waits for the user."""
        button = QToolButton()
        button.setText(text)
        button.clicked.connect(lambda: (slot(), self.dismiss()))
        self.layout().insertWidget(self.layout().count() - 1, button, 0, Qt.AlignmentFlag.AlignTop)
        self._seconds = 0.0
        self.timer.stop()
        return button

    def enterEvent(self, event) -> None:  # noqa: N802 - Qt naming: reading it, so it stays
        self.timer.stop()
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if self._seconds:
            self.timer.start(int(self._seconds * 1000))
        super().leaveEvent(event)

    def dismiss_after(self, seconds: float) -> None:
        self._seconds = seconds
        self.timer.start(int(seconds * 1000))

    def dismiss(self) -> None:
        self.hide()
        self.closed.emit()
        self.deleteLater()


class MessageArea(QWidget):
    """A column of message bars; the oldest go when there are more than ``limit``. Informational
    bars with no button of their own go after ``info_seconds``."""

    def __init__(self, limit: int = 4, parent: QWidget | None = None):
        super().__init__(parent)
        self.limit = limit
        self.info_seconds = 15.0
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._bars: list[MessageBar] = []

    def show_message(self, text: str, kind: str = "error", button: str = DISMISS) -> MessageBar:
        for bar in self._bars:
            if bar.text() == text and bar.kind == kind:  # already there: once is enough
                self._bars.remove(bar)
                self._bars.append(bar)
                self._layout.removeWidget(bar)
                self._layout.addWidget(bar)
                if bar.timer.isActive():
                    bar.dismiss_after(self.info_seconds)
                return bar
        bar = MessageBar(text, kind, button, self)
        if kind == "info" and button == DISMISS:
            bar.dismiss_after(self.info_seconds)
        bar.closed.connect(lambda: self._bars.remove(bar) if bar in self._bars else None)
        self._bars.append(bar)
        self._layout.addWidget(bar)
        while len(self._bars) > self.limit:
            self._bars[0].dismiss()
        return bar

    def messages(self, kind: str | None = None) -> list[str]:
        return [b.text() for b in self._bars if kind is None or b.kind == kind]
