"""The second pass (hires fix) and the variation seed: two checkable boxes, each editing one part."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from desktop_app.core.models import ModelInfo
from desktop_app.core.recipe import MAX_SEED, HiresFix, Variation
from desktop_app.gui.widgets import FieldError, SliderSpin

UPSCALER_LABELS = {"latent": "Latent", "lanczos": "Lanczos (pixels)"}


def select(combo: QComboBox, key) -> None:
    combo.setCurrentIndex(max(combo.findData(key), 0))


class HiresBox(QGroupBox):
    """Upscale the finished picture and redraw it over the end of a second schedule."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Second pass (hires fix)", parent, checkable=True, checked=False)
        self.setToolTip("Upscale the finished picture and redraw it over the end of a second schedule, "
                        "on this model or another one (an SDXL refiner)")
        self.scale = SliderSpin(1.0, 4.0, decimals=2, step=0.25)
        self.scale.setValue(2.0)
        self.steps = QSpinBox()
        self.steps.setRange(0, 1000)
        self.steps.setSpecialValueText("as many as the first pass")
        self.strength = SliderSpin(0.01, 1.0, decimals=2, step=0.05)
        self.strength.setValue(0.7)
        self.strength.setToolTip("How much the second pass redraws: its last steps × strength steps run")
        self.upscaler = QComboBox()
        for key, label in UPSCALER_LABELS.items():
            self.upscaler.addItem(label, key)
        self.upscaler.setToolTip("Latent: resize the latents; Lanczos: decode, resize the pixels, encode")
        self.model = QComboBox()
        self.model.setToolTip("The second pass's model")
        self.error = FieldError(self)
        form = QFormLayout(self)
        form.addRow("Upscale", self.scale)
        form.addRow("Steps", self.steps)
        form.addRow("Strength", self.strength)
        form.addRow("Upscaler", self.upscaler)
        form.addRow("Model", self.model)
        form.addRow("", self.error)
        for widget in (self.scale, self.strength):
            widget.valueChanged.connect(self.changed)
        self.steps.valueChanged.connect(self.changed)
        for combo in (self.upscaler, self.model):
            combo.currentIndexChanged.connect(self.changed)
        self.toggled.connect(self.changed)

    def set_models(self, models: list[ModelInfo]) -> None:
        current = self.model.currentData()
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItem("The same model", "")
        for info in models:
            if info.kind != "inpaint":
                self.model.addItem(info.name + (" (refiner)" if info.kind == "refiner" else ""), info.id)
        select(self.model, current or "")
        self.model.blockSignals(False)

    def part(self) -> HiresFix | None:
        if not self.isChecked():
            return None
        return HiresFix(round(self.scale.value(), 3), self.steps.value(), round(self.strength.value(), 3),
                        self.upscaler.currentData(), self.model.currentData() or "")

    def show_part(self, hires: HiresFix | None) -> list[str]:
        self.setChecked(hires is not None)
        if hires is None:
            return []
        self.scale.setValue(float(hires.scale))
        self.steps.setValue(int(hires.steps))
        self.strength.setValue(float(hires.strength))
        select(self.upscaler, hires.upscaler)
        index = self.model.findData(hires.model_id)
        self.model.setCurrentIndex(max(index, 0))
        if hires.model_id and index < 0:
            return [f"The second pass's model {hires.model_id!r} is not installed; the same model is used."]
        return []


class VariationBox(QGroupBox):
    """AUTOMATIC1111's variation seed and "Seed resize from"."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Variation seed", parent, checkable=True, checked=False)
        self.setToolTip("Vary the picture: its noise is blended (slerp) towards a second seed's noise")
        self.seed = QDoubleSpinBox()
        self.seed.setDecimals(0)
        self.seed.setRange(0, MAX_SEED)
        self.strength = SliderSpin(0.0, 1.0, decimals=2, step=0.05)
        self.resize_width, self.resize_height = QSpinBox(), QSpinBox()
        for box in (self.resize_width, self.resize_height):
            box.setRange(0, 16384)
            box.setSingleStep(8)
            box.setSpecialValueText("off")
            box.setToolTip("Seed resize from: draw the noise at this size, so a seed keeps its composition at another size")
        self.error = FieldError(self)
        resize_row = QWidget()
        row = QHBoxLayout(resize_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.resize_width)
        row.addWidget(QLabel("×"))
        row.addWidget(self.resize_height)
        form = QFormLayout(self)
        form.addRow("Seed", self.seed)
        form.addRow("Strength", self.strength)
        form.addRow("Resize from", resize_row)
        form.addRow("", self.error)
        self.strength.valueChanged.connect(self.changed)
        for box in (self.seed, self.resize_width, self.resize_height):
            box.valueChanged.connect(self.changed)
        self.toggled.connect(self.changed)

    def part(self) -> Variation | None:
        if not self.isChecked():
            return None
        return Variation(int(self.seed.value()), round(self.strength.value(), 3), self.resize_width.value(),
                         self.resize_height.value())

    def show_part(self, variation: Variation | None) -> None:
        self.setChecked(variation is not None)
        if variation is not None:
            self.seed.setValue(int(variation.seed))
            self.strength.setValue(float(variation.strength))
            self.resize_width.setValue(int(variation.resize_from_width))
            self.resize_height.setValue(int(variation.resize_from_height))
