"""Small reusable widgets: a slider bound to a number box, a prompt box, a field's error line."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QPlainTextEdit, QSlider, QSpinBox, QWidget


class SliderSpin(QWidget):
    """A slider and a number box showing one value; ``decimals`` > 0 makes it a float."""

    valueChanged = Signal(float)

    def __init__(self, minimum: float, maximum: float, *, decimals: int = 0, step: float = 1.0,
                 slider_max: float | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._scale = 10**decimals
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(minimum * self._scale), int((slider_max or maximum) * self._scale))
        self.spin: QSpinBox | QDoubleSpinBox
        if decimals:
            self.spin = QDoubleSpinBox()
            self.spin.setDecimals(decimals)
        else:
            self.spin = QSpinBox()
        self.spin.setRange(minimum, maximum) if decimals else self.spin.setRange(int(minimum), int(maximum))
        self.spin.setSingleStep(step)
        self.spin.setKeyboardTracking(False)
        self.spin.setMinimumWidth(70)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.slider.valueChanged.connect(self._from_slider)
        self.spin.valueChanged.connect(self._from_spin)
        self.setFocusProxy(self.spin)

    def _from_slider(self, raw: int) -> None:
        value = raw / self._scale
        if abs(self.spin.value() - value) > 0.5 / self._scale:
            self.spin.setValue(value)

    def _from_spin(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * self._scale))
        self.slider.blockSignals(False)
        self.valueChanged.emit(float(value))

    def value(self) -> float:
        return float(self.spin.value())

    def setValue(self, value: float) -> None:  # noqa: N802 - Qt naming
        self.spin.setValue(value)

    def setToolTip(self, text: str) -> None:  # noqa: N802 - Qt naming
        super().setToolTip(text)
        self.slider.setToolTip(text)
        self.spin.setToolTip(text)


class PromptEdit(QPlainTextEdit):
    """A multi-line prompt; Ctrl+Enter submits, Tab moves focus instead of inserting a tab."""

    submitted = Signal()

    def __init__(self, placeholder: str, lines: int = 3, parent: QWidget | None = None):
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        height = self.fontMetrics().lineSpacing() * lines + 14
        self.setMinimumHeight(height)
        self.setMaximumHeight(height * 2)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt naming
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)

    def text(self) -> str:
        return self.toPlainText()


class FieldError(QLabel):
    """The line under a control that says what is wrong with it; hidden when nothing is."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("fieldError")
        self.setWordWrap(True)
        self.setStyleSheet("color: #e5484d;")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hide()

    def show_problems(self, messages: list[str]) -> None:
        self.setText("\n".join(messages))
        self.setVisible(bool(messages))
