"""Add-ons in the parameters panel: a LoRA / embedding picker that writes tags into the prompt, and
the VAE choice of a model (remembered per model).

Both see only the backend's catalog (``ModelCatalog.add_ons``): names, families, files. A LoRA goes
into the prompt as A1111's ``<lora:name:weight>`` tag and an embedding as its name, where the
cursor is, so what the prompt says is what runs (and what other tools read back from the image).
Add-ons made for another family than the model's are listed greyed out, with the reason.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.models import ADD_ON_LABELS, AddOnInfo, ModelCatalog, ModelInfo
from desktop_app.core.prompt_syntax import format_tag
from desktop_app.core.recipe import MAX_ADD_ON_WEIGHT, AddOn

PICKED_KINDS = ("lora", "embedding")


def tag_for(add_on: AddOnInfo, weight: float = 1.0) -> str:
    """What the picker writes into a prompt: a LoRA's tag, an embedding's name."""
    return format_tag("lora", add_on.name, weight) if add_on.kind == "lora" else add_on.name


def insert_text(edit: QPlainTextEdit, text: str) -> None:
    """Put ``text`` at the cursor of a prompt box, a space on either side where words would touch."""
    cursor = edit.textCursor()
    whole = edit.toPlainText()
    before = whole[:cursor.position()]
    after = whole[cursor.position():]
    if before and not before[-1].isspace() and before[-1] not in "(,":
        text = " " + text
    if after and not after[0].isspace() and after[0] not in "),":
        text = text + " "
    cursor.insertText(text)
    edit.setTextCursor(cursor)
    edit.setFocus()


class AddOnPicker(QDialog):
    """The LoRAs and embeddings of the catalog; Insert (or a double click) writes the chosen one into
    the prompt or the negative prompt. It stays open, for several."""

    insert_requested = Signal(str, str)  # "prompt" | "negative", the text to insert

    def __init__(self, catalog: ModelCatalog, model: ModelInfo | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("LoRAs and embeddings")
        self.setObjectName("addOnPicker")
        self.model = model
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter by name")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setToolTip("Double-click to insert into the prompt")
        self.weight = QDoubleSpinBox()
        self.weight.setRange(-MAX_ADD_ON_WEIGHT, MAX_ADD_ON_WEIGHT)
        self.weight.setSingleStep(0.05)
        self.weight.setDecimals(2)
        self.weight.setValue(1.0)
        self.weight.setToolTip("A LoRA's strength: 1 as trained, 0 off, negative reverses it")
        self.target = QComboBox()
        self.target.addItem("Prompt", "prompt")
        self.target.addItem("Negative prompt", "negative")
        buttons = QDialogButtonBox()
        self.insert_button = buttons.addButton("&Insert", QDialogButtonBox.ButtonRole.ApplyRole)
        self.insert_button.setDefault(True)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.insert_button.clicked.connect(self.insert_current)
        form = QFormLayout()
        form.addRow("LoRA &weight", self.weight)
        form.addRow("Insert &into", self.target)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.search.textChanged.connect(self._filter)
        self.list.itemDoubleClicked.connect(lambda _item: self.insert_current())
        self.list.currentItemChanged.connect(self._on_current)
        self.fill(catalog, model)

    def fill(self, catalog: ModelCatalog, model: ModelInfo | None) -> None:
        self.model = model
        self.list.clear()
        family = model.family if model is not None else None
        add_ons = [a for kind in PICKED_KINDS for a in catalog.add_ons_of(kind)]
        for add_on in sorted(add_ons, key=lambda a: (family is not None and not a.fits(family), a.kind, a.name.casefold())):
            item = QListWidgetItem(f"{add_on.name}  ·  {ADD_ON_LABELS[add_on.kind]}, {add_on.family or 'any family'}")
            item.setData(Qt.ItemDataRole.UserRole, add_on)
            item.setToolTip(str(add_on.path))
            if family is not None and not add_on.fits(family):
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setToolTip(f"Made for {add_on.family}; the model is {family}\n{add_on.path}")
            self.list.addItem(item)
        if not add_ons:
            empty = QListWidgetItem("No LoRAs or embeddings found: add a folder of them in Settings, or another app's "
                                    "folder (Models → Add another app's folder…)")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(empty)
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        wanted = text.strip().casefold()
        for row in range(self.list.count()):
            item = self.list.item(row)
            add_on = item.data(Qt.ItemDataRole.UserRole)
            item.setHidden(bool(wanted) and add_on is not None and wanted not in add_on.name.casefold())
        if self.list.currentItem() is None or self.list.currentItem().isHidden():
            for row in range(self.list.count()):
                item = self.list.item(row)
                if not item.isHidden() and item.flags() & Qt.ItemFlag.ItemIsEnabled:
                    self.list.setCurrentItem(item)
                    break
        self._on_current(self.list.currentItem())

    def _on_current(self, item: QListWidgetItem | None, *_: object) -> None:
        add_on = self.chosen()
        self.insert_button.setEnabled(add_on is not None)
        self.weight.setEnabled(add_on is not None and add_on.kind == "lora")

    def chosen(self) -> AddOnInfo | None:
        item = self.list.currentItem()
        if item is None or item.isHidden() or not item.flags() & Qt.ItemFlag.ItemIsEnabled:
            return None
        return item.data(Qt.ItemDataRole.UserRole)

    def insert_current(self) -> None:
        add_on = self.chosen()
        if add_on is not None:
            self.insert_requested.emit(self.target.currentData(), tag_for(add_on, round(self.weight.value(), 2)))


class VaeChoice(QComboBox):
    """Automatic (the model's own VAE) or a VAE file of the catalog that fits the model. The choice
    is kept per model in ``memory`` (the settings' ``model_vaes``), so each model gets its own back."""

    chosen = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.memory: dict[str, str] = {}
        self._catalog = ModelCatalog()
        self._model: ModelInfo | None = None
        self._filling = False
        self.setToolTip("The VAE turns the finished latents into pixels: the model's own, or a VAE file")
        self.currentIndexChanged.connect(self._on_index)

    def set_catalog(self, catalog: ModelCatalog) -> None:
        self._catalog = catalog
        self.set_model(self._model)

    def set_model(self, model: ModelInfo | None) -> None:
        self._model = model
        self._filling = True
        self.clear()
        self.addItem("Automatic (the model's own)", "")
        for vae in self._catalog.add_ons_of("vae", model.family if model else None):
            self.addItem(f"{vae.name} ({vae.family})" if vae.family else vae.name, vae.name)
            self.setItemData(self.count() - 1, str(vae.path), Qt.ItemDataRole.ToolTipRole)
        wanted = self.memory.get(model.id, "") if model is not None else ""
        self.setCurrentIndex(max(self.findData(wanted), 0))
        self._filling = False

    def choices(self) -> int:
        """How many VAE files there are to choose from for this model."""
        return self.count() - 1

    def name(self) -> str:
        return self.currentData() or ""

    def add_ons(self) -> tuple[AddOn, ...]:
        return (AddOn("vae", self.name()),) if self.name() else ()

    def select(self, name: str) -> bool:
        """Show ``name`` (a restored recipe's VAE) without remembering it; False when it is not offered."""
        index = self.findData(name)
        self._filling = True
        self.setCurrentIndex(max(index, 0))
        self._filling = False
        return index >= 0 or not name

    def _on_index(self, _index: int) -> None:
        if self._filling:
            return
        if self._model is not None:
            if self.name():
                self.memory[self._model.id] = self.name()
            else:
                self.memory.pop(self._model.id, None)
        self.chosen.emit()
