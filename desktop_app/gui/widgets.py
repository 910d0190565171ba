"""Small reusable widgets: a slider bound to a number box, a prompt box, a field's error line, a label
that elides."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QValidator
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QWidget,
)


def _typed_number(box: QSpinBox | QDoubleSpinBox, text: str) -> float | None:
    body = text.removeprefix(box.prefix()).removesuffix(box.suffix()).strip()
    body = body.replace(box.locale().groupSeparator(), "").replace(box.locale().decimalPoint(), ".")
    try:
        return float(body)
    except ValueError:
        return None


def _number_text(box: QSpinBox | QDoubleSpinBox, value: float) -> str:
    return box.textFromValue(value) if isinstance(box, QDoubleSpinBox) else str(int(value))


def _clamp(box: QSpinBox | QDoubleSpinBox, text: str) -> str | None:
    """The text of the nearest allowed value when ``text`` is a number out of range (and says so)."""
    typed = _typed_number(box, text)
    if typed is None:
        return None
    kept = max(box.minimum(), min(box.maximum(), typed))
    if kept == typed:
        return None
    side = "the most" if typed > kept else "the least"
    what = box.property("what") or "This field"
    box.clamped.emit(f"{what}: {_number_text(box, typed)} is out of range; {_number_text(box, kept)} is {side} it "
                     f"takes, so it is set to that")
    return box.prefix() + _number_text(box, kept) + box.suffix()


def _validate(box: QSpinBox | QDoubleSpinBox, result, text: str, pos: int):
    """A number out of range may be typed to the end (it is pulled in range on Enter, with a word
    why) instead of its last keystrokes being dropped without a word."""
    state = result[0] if isinstance(result, tuple) else result
    if state == QValidator.State.Invalid and _typed_number(box, text) is not None:
        return QValidator.State.Intermediate, text, pos
    return result


class LimitedSpinBox(QSpinBox):
    """A whole-number box that says so (``clamped``) when a typed value is pulled into its range."""

    clamped = Signal(str)

    def validate(self, text: str, pos: int):  # noqa: D102 - Qt API
        return _validate(self, super().validate(text, pos), text, pos)

    def fixup(self, text: str) -> str:  # noqa: D102 - Qt API
        return _clamp(self, text) or super().fixup(text)


class LimitedDoubleSpinBox(QDoubleSpinBox):
    """A number box that says so (``clamped``) when a typed value is pulled into its range."""

    clamped = Signal(str)

    def validate(self, text: str, pos: int):  # noqa: D102 - Qt API
        return _validate(self, super().validate(text, pos), text, pos)

    def fixup(self, text: str) -> str:  # noqa: D102 - Qt API
        return _clamp(self, text) or super().fixup(text)


class SliderSpin(QWidget):
    """A slider and a number box showing one value; ``decimals`` > 0 makes it a float."""

    valueChanged = Signal(float)

    def __init__(self, minimum: float, maximum: float, *, decimals: int = 0, step: float = 1.0,
                 slider_max: float | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._scale = 10**decimals
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(minimum * self._scale), int((slider_max or maximum) * self._scale))
        self.spin: LimitedSpinBox | LimitedDoubleSpinBox
        if decimals:
            self.spin = LimitedDoubleSpinBox()
            self.spin.setDecimals(decimals)
        else:
            self.spin = LimitedSpinBox()
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
        self._height = height
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt naming: its lines, not Qt's 192 px, so a laptop's panel fits
        return QSize(super().sizeHint().width(), self._height)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt naming
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)

    def text(self) -> str:
        return self.toPlainText()


class FieldError(QLabel):
    """The line under a control that says what is wrong with it, and for a while a note about what
    was just changed for the user (a typed value pulled into range); hidden when there is neither."""

    NOTE_SECONDS = 12.0

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("fieldError")
        self.setWordWrap(True)
        self.setStyleSheet("color: #e5484d;")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._problems: list[str] = []
        self._note = ""
        self._note_timer = QTimer(self, singleShot=True)
        self._note_timer.timeout.connect(lambda: self.show_note(""))
        self.hide()

    def show_problems(self, messages: list[str]) -> None:
        self._problems = list(messages)
        self._render()

    def show_note(self, text: str) -> None:
        self._note = text
        if text:
            self._note_timer.start(int(self.NOTE_SECONDS * 1000))
        self._render()

    def note(self) -> str:
        return self._note

    def _render(self) -> None:
        lines = self._problems + ([self._note] if self._note else [])
        self.setText("\n".join(lines))
        self.setVisible(bool(lines))


class ElidedLabel(QLabel):
    """One line of text that never widens its parent: too long, it is cut in the middle ("…") and
    the whole text is in the tooltip. ``setText`` takes and ``text`` gives the whole text."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self._full = text
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        """The whole text, as given (``shown_text`` is what fits)."""
        return self._full

    def shown_text(self) -> str:
        return super().text()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        self._elide()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        return QSize(40, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 4, super().sizeHint().height())

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, max(self.width() - 2, 10))
        super().setText(shown)
