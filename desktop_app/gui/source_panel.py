"""The recipe's optional parts in the window: the source picture (image to image, inpainting,
outpainting), the second pass (hires fix) and the variation seed.

``SourcePanel`` is a part editor of the parameters panel (``ParametersPanel.add_part_editor``):
``parts()`` gives the parts its controls describe, ``set_parts()`` shows restored ones, and the
problems of those parts are shown here, under their own controls. The mask itself is painted on
the mask painter, which this panel drives (brush, eraser, size, hardness, invert, clear, undo);
each finished stroke is saved as a file (``save_mask``), so the recipe always points at a real mask.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.image_parts import (
    FIT_MODES,
    INPAINT_AREAS,
    MAX_MASK_BLUR,
    MAX_OUTPAINT,
    MAX_PADDING,
)
from desktop_app.core.models import ModelInfo
from desktop_app.core.recipe import (
    HiresFix,
    Inpainting,
    Outpaint,
    Problem,
    RecipeError,
    Source,
    Variation,
    part_from,
)
from desktop_app.gui.mask_painter import EDGES, MaskPainter
from desktop_app.gui.pass_editors import HiresBox, VariationBox, select
from desktop_app.gui.widgets import FieldError, SliderSpin

MODES = {"img2img": "Image to image", "inpaint": "Inpaint (paint a mask)"}
CONTENT_LABELS = {"original": "Original picture", "noise": "Latent noise", "fill": "Fill from around it"}
AREA_LABELS = {"whole": INPAINT_AREAS["whole"], "masked": "Only masked (at full resolution)"}
PART_NAMES = ("source", "hires", "variation")
PICTURE_FILTER = "Images (*.png *.jpg *.jpeg *.webp)"
NO_PICTURE = "No picture yet: right-click a picture → Send to image to image, drop a file here, or choose one."


def _combo(items: dict[str, str], tip: str) -> QComboBox:
    combo = QComboBox()
    for key, label in items.items():
        combo.addItem(label, key)
    combo.setToolTip(tip)
    return combo


class SourcePanel(QWidget):
    changed = Signal()
    picture_changed = Signal(str)  # the source picture's path ("" when removed)
    mode_changed = Signal(str)  # "img2img" | "inpaint"
    margins_changed = Signal()

    def __init__(self, painter: MaskPainter, parent: QWidget | None = None):
        super().__init__(parent)
        self.painter = painter
        self.image_path = ""
        self.mask_path = ""
        self.save_mask: Callable[[QImage], str] | None = None  # the window saves painted masks
        self._restoring = False
        self._build()
        self._connect()
        self.setAcceptDrops(True)
        self._update_visibility()

    # ---- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.thumb = QLabel()
        self.thumb.setFixedSize(64, 64)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setObjectName("hint")
        self.picture_label = QLabel(NO_PICTURE)
        self.picture_label.setWordWrap(True)
        self.picture_label.setObjectName("hint")
        self.choose_button = QPushButton("Choose…")
        self.choose_button.setToolTip("Start from a picture file")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Back to text to image")
        self.mode = _combo(MODES, "Redraw the whole picture, or only where the mask says")
        self.strength = SliderSpin(0.01, 1.0, decimals=2, step=0.05)
        self.strength.setValue(0.75)
        self.strength.setToolTip("Denoising strength: how far down the noise schedule the picture is pushed before it "
                                 "is redrawn. 1 redraws everything; small values keep the picture. Only the last "
                                 "steps × strength steps run.")
        self.fit = _combo(FIT_MODES, "A picture of another size is resized, cropped or padded to the output size")
        self.brush = QToolButton(text="Brush", checkable=True, checked=True)
        self.eraser = QToolButton(text="Eraser", checkable=True)
        tools = QButtonGroup(self)
        tools.addButton(self.brush)
        tools.addButton(self.eraser)
        self.brush_size = SliderSpin(1, 512, slider_max=128)
        self.brush_size.setValue(16)
        self.brush_size.setToolTip("Brush diameter in the picture's pixels")
        self.hardness = SliderSpin(0.0, 1.0, decimals=2, step=0.05)
        self.hardness.setValue(0.8)
        self.hardness.setToolTip("1: a hard edge; 0: soft from the centre")
        self.invert_button, self.clear_button, self.undo_button = (QPushButton(t) for t in ("Invert", "Clear", "Undo"))
        self.undo_button.setEnabled(False)
        self.blur = QSpinBox()
        self.blur.setRange(0, MAX_MASK_BLUR)
        self.blur.setValue(4)
        self.blur.setSuffix(" px")
        self.blur.setToolTip("Mask blur: the repainted area blends into the picture across this many pixels")
        self.content = _combo(CONTENT_LABELS, "What the masked area starts from before it is redrawn")
        self.area = _combo(AREA_LABELS, "Only masked: the box around the mask is redrawn at the full output size, "
                                        "then pasted back (more detail for small areas)")
        self.padding = QSpinBox()
        self.padding.setRange(0, MAX_PADDING)
        self.padding.setValue(32)
        self.padding.setSuffix(" px")
        self.padding.setToolTip("Pixels of picture kept around the mask's box when only the masked area is redrawn")
        self.margin_boxes = {}
        margins_row = QWidget()
        grid = QGridLayout(margins_row)
        grid.setContentsMargins(0, 0, 0, 0)
        for k, edge in enumerate(EDGES):
            box = QSpinBox()
            box.setRange(0, MAX_OUTPAINT)
            box.setSingleStep(8)
            box.setSuffix(" px")
            box.setToolTip(f"Outpainting: pixels added on the {edge} (or drag the handle on that edge of the mask)")
            box.setAccessibleName(f"Outpaint {edge}")
            self.margin_boxes[edge] = box
            grid.addWidget(QLabel(edge.capitalize()), k // 2, (k % 2) * 2)
            grid.addWidget(box, k // 2, (k % 2) * 2 + 1)
        self.source_error = FieldError(self)

        top = QHBoxLayout()
        top.addWidget(self.thumb)
        words = QVBoxLayout()
        words.addWidget(self.picture_label, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.choose_button)
        buttons.addWidget(self.remove_button)
        words.addLayout(buttons)
        top.addLayout(words, 1)
        self.tool_row = QWidget()
        tool_grid = QGridLayout(self.tool_row)
        tool_grid.setContentsMargins(0, 0, 0, 0)
        for k, widget in enumerate((self.brush, self.eraser, self.invert_button, self.clear_button, self.undo_button)):
            tool_grid.addWidget(widget, k // 3, k % 3)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Mode", self.mode)
        form.addRow("&Strength", self.strength)
        form.addRow("Resize", self.fit)
        form.addRow("Mask", self.tool_row)
        form.addRow("Brush size", self.brush_size)
        form.addRow("Hardness", self.hardness)
        form.addRow("Mask blur", self.blur)
        form.addRow("Content", self.content)
        form.addRow("Inpaint area", self.area)
        form.addRow("Padding", self.padding)
        form.addRow("Outpaint", margins_row)
        self.source_form = form
        self.source_box = QGroupBox("Start from a picture")
        box_layout = QVBoxLayout(self.source_box)
        box_layout.addLayout(top)
        box_layout.addLayout(form)
        box_layout.addWidget(self.source_error)

        self.hires_box = HiresBox()
        self.variation_box = VariationBox()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.source_box)
        layout.addWidget(self.hires_box)
        layout.addWidget(self.variation_box)
        layout.addStretch(1)

    def _connect(self) -> None:
        self.choose_button.clicked.connect(self._choose)
        self.remove_button.clicked.connect(lambda: self.set_picture(""))
        self.mode.currentIndexChanged.connect(self._on_mode)
        for combo in (self.fit, self.content, self.area):
            combo.currentIndexChanged.connect(self._emit)
        self.strength.valueChanged.connect(self._emit)
        for box in (self.blur, self.padding):
            box.valueChanged.connect(self._emit)
        for group in (self.hires_box, self.variation_box):
            group.changed.connect(self._emit)
        for box in self.margin_boxes.values():
            box.valueChanged.connect(self._on_margin_box)
        self.brush.toggled.connect(lambda on: setattr(self.painter, "erasing", not on))
        self.brush_size.valueChanged.connect(lambda v: setattr(self.painter, "brush_size", v))
        self.hardness.valueChanged.connect(lambda v: setattr(self.painter, "hardness", v))
        self.invert_button.clicked.connect(self.painter.invert)
        self.clear_button.clicked.connect(self.painter.clear)
        self.undo_button.clicked.connect(self.painter.undo)
        self.painter.stroke_finished.connect(self._on_stroke)
        self.painter.margins_changed.connect(self._on_handles)

    # ---- the picture and the mask --------------------------------------------------------------
    def set_picture(self, path: str, mode: str | None = None, mask_path: str = "") -> bool:
        """Start from the picture at ``path`` ("": back to text to image); False if it cannot be read."""
        picture = QImage(path) if path else QImage()
        if path and picture.isNull():
            self.source_error.show_problems([f"{Path(path).name} could not be read as a picture"])
            return False
        self.image_path = path
        mask = QImage(mask_path) if mask_path else None
        self.mask_path = mask_path if mask is not None and not mask.isNull() else ""
        self.painter.set_picture(picture, mask if self.mask_path else None)
        for box in self.margin_boxes.values():
            box.blockSignals(True)
            box.setValue(0)
            box.blockSignals(False)
        if picture.isNull():
            self.thumb.clear()
            self.picture_label.setText(NO_PICTURE)
        else:
            self.thumb.setPixmap(QPixmap.fromImage(picture).scaled(64, 64, Qt.AspectRatioMode.KeepAspectRatio,
                                                                   Qt.TransformationMode.SmoothTransformation))
            name = self.picture_label.fontMetrics().elidedText(Path(path).name, Qt.TextElideMode.ElideMiddle, 170)
            self.picture_label.setText(f"{name}\n{picture.width()}×{picture.height()} px")
            self.picture_label.setToolTip(path)
        if mode is not None:
            select(self.mode, mode)
        self._update_visibility()
        self.picture_changed.emit(path)
        self.mode_changed.emit(self.current_mode())
        self._emit()
        return True

    def current_mode(self) -> str:
        return self.mode.currentData()

    @property
    def restoring(self) -> bool:
        """True while ``set_parts`` shows a restored recipe (its changes are not the user's)."""
        return self._restoring

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Start from a picture", "", PICTURE_FILTER)
        if path:
            self.set_picture(path)

    def _on_mode(self) -> None:
        self._update_visibility()
        self.mode_changed.emit(self.current_mode())
        self._emit()

    def _on_stroke(self) -> None:
        self.undo_button.setEnabled(self.painter.can_undo())
        if self.painter.has_mask() and self.save_mask is not None:
            self.mask_path = self.save_mask(self.painter.mask)
        else:
            self.mask_path = ""
        self._emit()

    def _on_handles(self, *margins: int) -> None:
        for edge, value in zip(EDGES, margins, strict=True):
            box = self.margin_boxes[edge]
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self.margins_changed.emit()
        self._emit()

    def _on_margin_box(self) -> None:
        self.painter.set_margins(*self.margins())
        self.margins_changed.emit()
        self._emit()

    def margins(self) -> tuple[int, int, int, int]:
        return tuple(self.margin_boxes[edge].value() for edge in EDGES)

    def _emit(self, *_: object) -> None:
        if not self._restoring:
            self.changed.emit()

    def _update_visibility(self) -> None:
        has = bool(self.image_path)
        inpaint = has and self.current_mode() == "inpaint"
        for widget in (self.mode, self.strength, self.fit):
            self.source_form.setRowVisible(widget, has)
        for widget in (self.tool_row, self.brush_size, self.hardness, self.blur, self.content, self.area):
            self.source_form.setRowVisible(widget, inpaint)
        self.source_form.setRowVisible(self.padding, inpaint and self.area.currentData() == "masked")
        self.source_form.setRowVisible(self.margin_boxes["left"].parentWidget(), inpaint)
        self.remove_button.setEnabled(has)

    # ---- the part editor -------------------------------------------------------------------------
    def set_models(self, models: list[ModelInfo]) -> None:
        self.hires_box.set_models(models)

    def parts(self) -> dict[str, Any]:
        inpaint = self.current_mode() == "inpaint"
        source = None
        if self.image_path:
            options = Inpainting(self.blur.value(), self.content.currentData(), self.area.currentData(), self.padding.value())
            source = Source(self.image_path, self.mask_path if inpaint else "", round(self.strength.value(), 3),
                            self.fit.currentData(), options, Outpaint(*self.margins()) if inpaint else Outpaint())
        hires, variation = self.hires_box.part(), self.variation_box.part()
        return {"source": source, "hires": hires, "variation": variation}

    def problems(self) -> list[Problem]:
        """What only the window knows: inpainting with nothing painted yet."""
        if self.image_path and self.current_mode() == "inpaint" and not self.mask_path and not any(self.margins()):
            return [Problem("source.mask", "paint the area to repaint on the Mask tab, or drag an edge to extend the "
                                           "picture (or switch to image to image)")]
        return []

    def show_problems(self, problems: list[Problem]) -> None:
        for label, prefix in ((self.source_error, "source"), (self.hires_box.error, "hires"),
                              (self.variation_box.error, "variation")):
            label.show_problems([p.message for p in problems if p.field.split(".")[0] == prefix])

    def set_parts(self, values: dict[str, Any]) -> list[str]:
        """Show restored parts (their flat dict forms or None); returns notes for the user."""
        notes: list[str] = []
        self._restoring = True
        try:
            source = self._part(Source, values.get("source"), notes)
            hires = self._part(HiresFix, values.get("hires"), notes)
            variation = self._part(Variation, values.get("variation"), notes)
            if source is not None:
                raw = values.get("source")
                # another tool's text names no mask file, but its inpainting keys say what it was
                said = isinstance(raw, dict) and isinstance(raw.get("inpaint"), dict) and bool(
                    {"area", "content", "padding"} & set(raw["inpaint"]))
                self._show_source(source, notes, inpainted=source.masked or (not source.image and said))
            elif self.image_path:
                self.set_picture("")
            notes += self.hires_box.show_part(hires)
            self.variation_box.show_part(variation)
        except (TypeError, ValueError) as exc:
            notes.append(f"Some settings of the picture to start from could not be restored ({exc}).")
        finally:
            self._restoring = False
        self._update_visibility()
        return notes

    @staticmethod
    def _part(kind: type, value: Any, notes: list[str]):
        if value is None:
            return None
        try:
            return part_from(kind, value, kind.__name__)
        except RecipeError as exc:
            notes.append(str(exc))
            return None

    def _show_source(self, source: Source, notes: list[str], *, inpainted: bool) -> None:
        self.strength.setValue(float(source.strength))
        select(self.fit, source.fit)
        self.blur.setValue(int(source.inpaint.blur))
        select(self.content, source.inpaint.content)
        select(self.area, source.inpaint.area)
        self.padding.setValue(int(source.inpaint.padding))
        mode = "inpaint" if inpainted else "img2img"
        if source.image and Path(source.image).is_file():
            self.set_picture(source.image, mode, source.mask)
        else:
            if self.image_path:
                self.set_picture("")
            select(self.mode, mode)
            what = "inpainted" if inpainted else "made from another picture"
            where = f" ({source.image} is not there any more)" if source.image else ""
            notes.append(f"This picture was {what}{where}: choose the picture to start from to run it again.")
        for edge in EDGES:
            box = self.margin_boxes[edge]
            box.blockSignals(True)
            box.setValue(int(getattr(source.outpaint, edge)))
            box.blockSignals(False)
        self.painter.set_margins(*self.margins())

    # ---- drops -------------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt naming
        for url in event.mimeData().urls():
            if url.isLocalFile():
                event.acceptProposedAction()
                self.set_picture(url.toLocalFile())
                return
