"""The parameters panel: every control of a recipe, with its problems shown in place.

The panel turns its controls into a ``Recipe`` and back (``recipe()`` / ``set_recipe()``),
validates it on every change with ``Recipe.validate`` and shows each problem under the control it
belongs to. It uses only the shared, torch-free core (models, schedulers, recipes).
"""

from __future__ import annotations

import random
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.models import ModelCatalog, ModelInfo
from desktop_app.core.prompt_add_ons import replace_add_ons, without_prompt_add_ons
from desktop_app.core.recipe import (
    DDPM_VARIANCES,
    MAX_BATCH,
    MAX_CLASSIFIER_SCALE,
    MAX_GUIDANCE,
    MAX_SEED,
    MAX_STEPS,
    Problem,
    Recipe,
    usable_values,
)
from desktop_app.core.schedulers import SCHEDULERS
from desktop_app.gui.add_on_picker import AddOnPicker, VaeChoice, insert_text
from desktop_app.gui.prompt_help import PromptHelp, UnknownWordHighlighter, unknown_words
from desktop_app.gui.tokens import TokenCounter
from desktop_app.gui.widgets import FieldError, LimitedDoubleSpinBox, LimitedSpinBox, PromptEdit, SliderSpin

RANDOM_SEED = -1
# Recipe fields (flat names) the panel has controls for; any other field of a restored recipe (e.g.
# A1111's ENSD as noise_seed_delta, add-ons, a source image) is carried through unchanged, so a
# recipe reproduces exactly.
CONTROLLED = {"prompt", "negative_prompt", "model_id", "scheduler", "steps", "guidance_scale", "seed", "width", "height",
              "batch_size", "eta", "ddpm_variance", "classifier_target", "classifier_scale"}
ASPECTS = ((1, 1, "square"), (3, 4, "portrait"), (4, 3, "landscape"), (2, 3, "portrait"), (3, 2, "landscape"),
           (9, 16, "tall"), (16, 9, "wide"))


def size_presets(info: ModelInfo) -> list[tuple[int, int, str]]:
    """Sizes near the model's native area in common aspect ratios, as multiples of its latent factor."""
    native_w, native_h = info.native_size
    area = native_w * native_h
    step = info.latent_factor * (8 if native_w >= 256 else 1)
    found: list[tuple[int, int, str]] = []
    for aw, ah, label in ASPECTS:
        w = round((area * aw / ah) ** 0.5 / step) * step
        h = round((area * ah / aw) ** 0.5 / step) * step
        if info.min_size <= w <= info.max_size and info.min_size <= h <= info.max_size and (w, h) not in [f[:2] for f in found]:
            found.append((w, h, "native" if (w, h) == (native_w, native_h) else label))
    return found


def model_label(info: ModelInfo) -> str:
    """"Name · family, W×H [· on server]", without saying the family twice ("Shapes (built-in)")."""
    width, height = info.native_size
    family = "" if info.family.lower() in info.name.lower() else f"{info.family}, "
    where = f" · on {info.location}" if info.location else ""
    return f"{info.name} · {family}{width}×{height}{where}"


class ParametersPanel(QWidget):
    changed = Signal()  # any control changed
    validity_changed = Signal(bool)  # True: the recipe can be generated
    submit = Signal()  # Ctrl+Enter in a prompt box

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.last_seed: int | None = None
        self._models: dict[str, ModelInfo] = {}
        self._problems: list[Problem] = []
        self._restoring = False
        self._passthrough: dict[str, Any] = {}
        self._errors: dict[str, FieldError] = {}
        self._catalog = ModelCatalog()
        self.add_on_picker: AddOnPicker | None = None
        self._editors: list = []  # part editors: the recipe's optional parts (source, hires, variation)
        self._build()
        self._connect()

    # ---- building ---------------------------------------------------------------------------
    def _error(self, *fields: str) -> FieldError:
        label = FieldError(self)
        for name in fields:
            self._errors[name] = label
        return label

    def _build(self) -> None:
        self.prompt = PromptEdit("Describe the image, e.g. “a red circle on the left on a white background”", 3)
        self.prompt.setToolTip("What the image should show. Ctrl+Enter generates.")
        self.negative = PromptEdit("What the image should not show (optional)", 2)
        self.negative.setToolTip("Classifier-free guidance steers away from this text. Ctrl+Enter generates.")

        self.model = QComboBox()
        self.model.setToolTip("The model that makes the image: its name, family and native size")
        self.model_note = QLabel()
        self.model_note.setWordWrap(True)
        self.model_note.setObjectName("hint")
        self.model_note.hide()
        self.vae = VaeChoice()
        self.add_ons_button = QToolButton()
        self.add_ons_button.setText("LoRA / embedding…")
        self.add_ons_button.setToolTip("Insert a LoRA tag or an embedding's name into the prompt")

        self.scheduler = QComboBox()
        for name, spec in SCHEDULERS.items():
            self.scheduler.addItem(name)
            self.scheduler.setItemData(self.scheduler.count() - 1, spec.description, Qt.ItemDataRole.ToolTipRole)
        self.scheduler.setToolTip("How the noise is removed step by step (the sampler)")
        self.eta = SliderSpin(0.0, 1.0, decimals=2, step=0.05)
        self.eta.setToolTip("DDIM's η: 0 is deterministic DDIM, 1 adds as much fresh noise as DDPM")
        self.variance = QComboBox()
        for key, label in DDPM_VARIANCES.items():
            self.variance.addItem(label, key)
        self.variance.setToolTip("DDPM's reverse-step variance σₜ²: the posterior β̃ₜ or βₜ itself")

        self.steps = SliderSpin(1, MAX_STEPS, slider_max=150)
        self.steps.setToolTip("Denoising steps: more is slower and, up to a point, cleaner")
        self.guidance = SliderSpin(0.0, MAX_GUIDANCE, decimals=1, step=0.5, slider_max=20.0)
        self.guidance.setToolTip("Classifier-free guidance scale s: ε̄ = ε(∅) + s·(ε(c) − ε(∅)); 1 turns it off")

        self.guidance_mode = QComboBox()
        self.guidance_mode.addItem("Classifier-free", "cfg")
        self.guidance_mode.addItem("+ Classifier guidance", "classifier")
        self.guidance_mode.setToolTip("Add the model's noisy-latent classifier: ε̂ = ε − s·√(1−ᾱₜ)·∇ log p(c|xₜ)")
        self.target_colour = QComboBox()
        self.target_colour.setToolTip("The colour the classifier steers towards")
        self.target_shape = QComboBox()
        self.target_shape.setToolTip("The shape the classifier steers towards")
        self.classifier_scale = LimitedDoubleSpinBox()
        self.classifier_scale.setRange(0.0, MAX_CLASSIFIER_SCALE)
        self.classifier_scale.setSingleStep(0.5)
        self.classifier_scale.setToolTip("Classifier guidance scale s")
        self.classifier_row = QWidget()  # the target on one row, its scale on the next: both fit a narrow panel
        row = QHBoxLayout(self.classifier_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.target_colour, 1)
        row.addWidget(self.target_shape, 1)

        self.seed = LimitedDoubleSpinBox()
        self.seed.setDecimals(0)
        self.seed.setRange(RANDOM_SEED, MAX_SEED)
        self.seed.setSpecialValueText("Random")
        self.seed.setValue(RANDOM_SEED)
        self.seed.setToolTip("The starting noise; the same seed and settings give the same image. "
                             "Lowest value = a new random seed every time.")
        self.dice = QToolButton()
        self.dice.setText("⚄")
        self.dice.setToolTip("Pick a new random seed now")
        self.reuse = QToolButton()
        self.reuse.setText("♻")
        self.reuse.setToolTip("Reuse the last image's seed")
        self.reuse.setEnabled(False)
        self.random_seed = QToolButton()
        self.random_seed.setText("∗")
        self.random_seed.setToolTip("Random seed each time")
        for button, name in ((self.dice, "New random seed"), (self.reuse, "Reuse last seed"), (self.random_seed, "Random seed")):
            button.setAccessibleName(name)
        seed_row = QWidget()
        row = QHBoxLayout(seed_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.seed, 1)
        for button in (self.dice, self.reuse, self.random_seed):
            row.addWidget(button)

        self.size = QComboBox()
        self.size.setToolTip("Image size; the model's native size works best")
        self.width_box, self.height_box = LimitedSpinBox(), LimitedSpinBox()
        for box, what in ((self.width_box, "Width"), (self.height_box, "Height")):
            box.setRange(1, 8192)
            box.setSuffix(" px")
            box.setKeyboardTracking(False)
            box.setToolTip(f"{what} in pixels: a multiple of the model's latent factor")
        self.custom_row = QWidget()
        row = QHBoxLayout(self.custom_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.width_box)
        row.addWidget(QLabel("×"))
        row.addWidget(self.height_box)

        self.batch_size = LimitedSpinBox()
        self.batch_size.setRange(1, MAX_BATCH)
        self.batch_size.setToolTip("Images made together in one run (uses more memory)")
        self.batch_count = LimitedSpinBox()
        self.batch_count.setRange(1, 100)
        self.batch_count.setToolTip("Runs queued one after another (seed + batch size each time when the seed is fixed)")
        batch_row = QWidget()
        row = QHBoxLayout(batch_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("size"))
        row.addWidget(self.batch_size, 1)
        row.addWidget(QLabel("count"))
        row.addWidget(self.batch_count, 1)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form = form
        form.addRow("&Model", self.model)
        form.addRow("", self.model_note)
        form.addRow("", self._error("model.id"))
        form.addRow("&VAE", self.vae)
        form.addRow("S&cheduler", self.scheduler)
        form.addRow("", self._error("sampling.scheduler"))
        form.addRow("η (eta)", self.eta)
        form.addRow("", self._error("sampling.eta"))
        form.addRow("Variance", self.variance)
        form.addRow("", self._error("sampling.ddpm_variance"))
        form.addRow("S&teps", self.steps)
        form.addRow("", self._error("sampling.steps"))
        form.addRow("&Guidance", self.guidance)
        form.addRow("", self._error("guidance.scale"))
        form.addRow("Mode", self.guidance_mode)
        form.addRow("Target", self.classifier_row)
        form.addRow("Strength", self.classifier_scale)
        form.addRow("", self._build_classifier_hint())
        form.addRow("", self._error("guidance.classifier_target", "guidance.classifier_scale"))
        form.addRow("S&eed", seed_row)
        form.addRow("", self._error("output.seed"))
        form.addRow("Si&ze", self.size)
        form.addRow("", self.custom_row)
        form.addRow("", self._build_native_size_button())
        form.addRow("", self._error("output.width", "output.height"))
        form.addRow("&Batch", batch_row)
        form.addRow("", self._error("output.batch_size"))

        layout = QVBoxLayout(self)
        prompt_row = QHBoxLayout()
        prompt_row.addWidget(QLabel("&Prompt", buddy=self.prompt))
        prompt_row.addStretch(1)
        prompt_row.addWidget(self.add_ons_button)
        layout.addLayout(prompt_row)
        layout.addWidget(self.prompt)
        layout.addWidget(self._build_prompt_help())
        layout.addWidget(QLabel("&Negative prompt", buddy=self.negative))
        layout.addWidget(self.negative)
        layout.addLayout(form)
        layout.addStretch(1)
        for combo in self.findChildren(QComboBox):  # a long model or item name never widens the panel
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
        self._update_visibility()

    def _connect(self) -> None:
        for edit in (self.prompt, self.negative):
            edit.submitted.connect(self.submit)
            edit.textChanged.connect(self._on_change)
        self.model.currentIndexChanged.connect(self._on_model)
        for combo in (self.scheduler, self.variance, self.guidance_mode, self.target_colour, self.target_shape):
            combo.currentIndexChanged.connect(self._on_change)
        for slider in (self.eta, self.steps, self.guidance):
            slider.valueChanged.connect(self._on_change)
        for box in (self.classifier_scale, self.seed, self.width_box, self.height_box, self.batch_size, self.batch_count):
            box.valueChanged.connect(self._on_change)
        self.size.currentIndexChanged.connect(self._on_size)
        self.vae.chosen.connect(self._on_change)
        self.add_ons_button.clicked.connect(self.open_add_on_picker)
        self._say_when_clamped()
        self.dice.clicked.connect(lambda: self.seed.setValue(random.randint(0, MAX_SEED - MAX_BATCH)))
        self.reuse.clicked.connect(lambda: self.last_seed is not None and self.seed.setValue(self.last_seed))
        self.random_seed.clicked.connect(lambda: self.seed.setValue(RANDOM_SEED))

    def _say_when_clamped(self) -> None:
        """A typed value pulled into range is said so under its field, not changed without a word."""
        boxes = {"sampling.steps": (self.steps.spin, "Steps"), "guidance.scale": (self.guidance.spin, "Guidance"),
                 "sampling.eta": (self.eta.spin, "η"), "guidance.classifier_scale": (self.classifier_scale, "Strength"),
                 "output.seed": (self.seed, "Seed"), "output.width": (self.width_box, "Width"),
                 "output.height": (self.height_box, "Height"), "output.batch_size": (self.batch_size, "Batch size")}
        for field, (box, what) in boxes.items():
            box.setProperty("what", what)
            box.clamped.connect(self._errors[field].show_note)
        self.batch_count.setProperty("what", "Batch count")
        self.batch_count.clamped.connect(self._errors["output.batch_size"].show_note)

    # ---- one-click fixes ------------------------------------------------------------------------
    def _build_classifier_hint(self) -> QWidget:
        """Classifier guidance steers best alone: say so, and offer to set that up."""
        self.classifier_hint = QWidget()
        row = QHBoxLayout(self.classifier_hint)
        row.setContentsMargins(0, 0, 0, 0)
        text = QLabel("Works best with an empty prompt and guidance 1, so the classifier alone steers.")
        text.setObjectName("hint")
        text.setWordWrap(True)
        self.classifier_setup = QToolButton()
        self.classifier_setup.setText("Set that")
        self.classifier_setup.setToolTip("Empty the prompt and set guidance to 1 (classifier-free guidance off)")
        self.classifier_setup.clicked.connect(self._set_up_for_classifier)
        row.addWidget(text, 1)
        row.addWidget(self.classifier_setup, 0, Qt.AlignmentFlag.AlignTop)
        return self.classifier_hint

    def _set_up_for_classifier(self) -> None:
        self.prompt.clear()
        self.guidance.setValue(1.0)

    def _build_native_size_button(self) -> QToolButton:
        """After restoring another tool's image, its size is rarely this model's: one click fixes it."""
        self.native_size_button = QToolButton()
        self.native_size_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.native_size_button.clicked.connect(self.use_native_size)
        return self.native_size_button

    def _off_native_size(self) -> tuple[int, int] | None:
        """The model's native size when a custom size other than it is set."""
        info = self.model_info()
        if info is None or self.size.currentData() is not None:
            return None
        native = tuple(info.native_size)
        return native if (self.width_box.value(), self.height_box.value()) != native else None

    def use_native_size(self) -> None:
        info = self.model_info()
        if info is not None:
            self._select_size(*info.native_size)

    # ---- what the prompt box says as the user types ----------------------------------------------
    def _build_prompt_help(self) -> PromptHelp:
        """The token count and, for a model that declares its words, those words and the unknown ones."""
        self.prompt_help = PromptHelp()
        self.token_counter = TokenCounter()
        self._highlighters = [UnknownWordHighlighter(edit.document()) for edit in (self.prompt, self.negative)]
        self.prompt_help.word_chosen.connect(self._insert_word)
        self.prompt_help.hide()
        return self.prompt_help

    def _update_prompt_help(self, model_changed: bool = False) -> None:
        info = self.model_info()
        vocabulary = frozenset(w.casefold() for w in info.vocabulary) if info else frozenset()
        if model_changed or self.prompt_help.vocabulary != (info.vocabulary if info else ()):
            self.prompt_help.set_model(info.name if info else "", info.vocabulary if info else ())
            for highlighter in self._highlighters:
                highlighter.set_vocabulary(vocabulary)
        self.prompt_help.show_state(self.token_counter.count(info, self.prompt.text()), self.unknown_words())

    def unknown_words(self) -> list[str]:
        """The prompt's words the chosen model does not know (empty when it declares no vocabulary)."""
        info = self.model_info()
        return unknown_words(self.prompt.text(), frozenset(w.casefold() for w in info.vocabulary) if info else frozenset())

    def _insert_word(self, word: str) -> None:
        cursor = self.prompt.textCursor()
        before = self.prompt.toPlainText()[:cursor.position()]
        cursor.insertText(("" if not before or before.endswith(" ") else " ") + word + " ")
        self.prompt.setFocus()

    # ---- part editors -------------------------------------------------------------------------
    def add_part_editor(self, editor) -> None:
        """A widget editing some of the recipe's optional parts elsewhere in the window: it has
        ``parts()`` → {part name: part or None}, ``set_parts(their flat values)`` → notes for the user,
        ``problems()`` (what only it can see), ``show_problems(problems)``, ``set_models(models)`` and
        a ``changed`` signal. Its parts' problems are shown by it, not here."""
        self._editors.append(editor)
        editor.changed.connect(self._on_change)
        editor.set_models(self.models())

    def set_size(self, width: int, height: int) -> None:
        """Show this output size (a preset when one matches, else the custom boxes)."""
        self._select_size(width, height)
        self._on_change()

    # ---- models -------------------------------------------------------------------------------
    def set_models(self, discovery: ModelCatalog, preferred: str | None = None) -> None:
        wanted = preferred or self.model.currentData()
        self._models = {m.id: m for m in discovery.models}
        self._catalog = discovery
        self.vae.set_catalog(discovery)
        self.model.blockSignals(True)
        self.model.clear()
        for info in discovery.models:
            self.model.addItem(model_label(info), info.id)
            self.model.setItemData(self.model.count() - 1, str(info.path), Qt.ItemDataRole.ToolTipRole)
        index = self.model.findData(wanted) if wanted else -1
        self.model.setCurrentIndex(index if index >= 0 else (0 if self.model.count() else -1))
        self.model.blockSignals(False)
        for editor in self._editors:
            editor.set_models(self.models())
        notes = [f"Not usable: {e}" for e in discovery.errors[:3]]
        if len(discovery.errors) > 3:
            notes.append(f"…and {len(discovery.errors) - 3} more files that cannot be used (Models → Model manager)")
        self.model_note.setText("\n".join(notes))
        self.model_note.setVisible(bool(notes))
        self._on_model()

    def models(self) -> list[ModelInfo]:
        return list(self._models.values())

    def model_info(self) -> ModelInfo | None:
        return self._models.get(self.model.currentData())

    def _on_model(self) -> None:
        info = self.model_info()
        self._fill_sizes(info)
        self._fill_classes(info)
        self.vae.set_model(info)
        if self.add_on_picker is not None:
            self.add_on_picker.fill(self._catalog, info)
        self._update_prompt_help(model_changed=True)
        self._on_change()

    def _fill_sizes(self, info: ModelInfo | None) -> None:
        current = (self.width_box.value(), self.height_box.value())
        self.size.blockSignals(True)
        self.size.clear()
        if info is not None:
            for w, h, label in size_presets(info):
                self.size.addItem(f"{w}×{h} ({label})", (w, h))
            step = info.latent_factor
            for box in (self.width_box, self.height_box):
                box.setSingleStep(step)
        self.size.addItem("Custom…", None)
        self.size.blockSignals(False)
        self._select_size(*current) if self._restoring else self.size.setCurrentIndex(0)
        self._on_size()

    def _select_size(self, width: int, height: int) -> None:
        for index in range(self.size.count()):
            if self.size.itemData(index) == (width, height):
                self.size.setCurrentIndex(index)
                return
        self.size.setCurrentIndex(self.size.count() - 1)
        self.width_box.setValue(width)
        self.height_box.setValue(height)

    def _on_size(self) -> None:
        data = self.size.currentData()
        if data is not None:
            for box, value in zip((self.width_box, self.height_box), data, strict=True):
                box.blockSignals(True)
                box.setValue(value)
                box.blockSignals(False)
        self._on_change()

    def _fill_classes(self, info: ModelInfo | None) -> None:
        labels = info.classifier_labels if info else {}
        for combo, head in ((self.target_colour, "colour"), (self.target_shape, "shape")):
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(f"any {head}", "")
            for label in labels.get(head, []):
                combo.addItem(label, label)
            combo.blockSignals(False)

    # ---- recipe <-> controls ----------------------------------------------------------------
    def recipe(self) -> Recipe:
        seed = int(self.seed.value())
        classifier = self.guidance_mode.currentData() == "classifier" and self.guidance_mode.isVisibleTo(self)
        target = " ".join(t for t in (self.target_colour.currentData(), self.target_shape.currentData()) if t)
        recipe = Recipe.of(
            self.prompt.text().strip(),
            negative_prompt=self.negative.text().strip(),
            model_id=self.model.currentData() or "",
            scheduler=self.scheduler.currentText(),
            steps=int(self.steps.value()),
            guidance_scale=round(self.guidance.value(), 2),
            seed=None if seed == RANDOM_SEED else seed,
            width=self.width_box.value(),
            height=self.height_box.value(),
            batch_size=self.batch_size.value(),
            eta=round(self.eta.value(), 3),
            ddpm_variance=self.variance.currentData(),
            classifier_target=target if classifier else "",
            classifier_scale=self.classifier_scale.value() if classifier else 0.0,
        )
        recipe = Recipe.from_flat({**recipe.flat(), **self._passthrough})
        recipe = replace_add_ons(recipe, "vae", self.vae.add_ons())
        for editor in self._editors:
            recipe = recipe.with_(**editor.parts())
        return recipe

    def set_recipe(self, recipe: Recipe | dict[str, Any], batch_count: int | None = None) -> list[str]:
        """Show a recipe (a ``Recipe``, or its flat form from the settings or the gallery).

        Returns notes for the user about what could not be restored as it was.
        """
        notes: list[str] = []
        if not isinstance(recipe, Recipe):
            try:
                recipe = Recipe.from_flat(dict(recipe))
            except (TypeError, ValueError):  # a damaged recipe: what can be read is shown below
                pass
        # the add-ons its prompt gives again (LoRA tags, embedding names) are the prompt's to change
        data = without_prompt_add_ons(recipe).flat() if isinstance(recipe, Recipe) else dict(recipe)
        vae = next((a.get("name", "") for a in data.get("add_ons") or [] if isinstance(a, dict) and a.get("kind") == "vae"), "")
        data["add_ons"] = [a for a in data.get("add_ons") or [] if not (isinstance(a, dict) and a.get("kind") == "vae")]
        data, rejected = usable_values(data)  # a damaged recipe: the values that fail their own check stay default
        if rejected:
            notes.append(f"Some settings could not be restored ({', '.join(rejected)}); their defaults are shown.")
        defaults = Recipe.of("").flat()
        values = {**defaults, **{k: v for k, v in data.items() if v is not None or k in ("seed", "width", "height", "source")}}
        edited = {name for editor in self._editors for name in editor.parts()}
        self._passthrough = {k: v for k, v in values.items() if k in defaults and k not in CONTROLLED and k not in edited}
        for editor in self._editors:
            notes += editor.set_parts({name: values.get(name) for name in editor.parts()})
        self._restoring = True
        try:
            self.prompt.setPlainText(str(values["prompt"]))
            self.negative.setPlainText(str(values["negative_prompt"]))
            index = self.model.findData(values["model_id"])
            if index >= 0:
                self.model.setCurrentIndex(index)
            elif values["model_id"] and self.model.count():
                notes.append(f"The model {values['model_id']!r} is not installed, so {self.model.currentText()} "
                             "is selected instead; the image will differ.")
            info = self.model_info()
            index = self.scheduler.findText(str(values["scheduler"]))
            if index >= 0:
                self.scheduler.setCurrentIndex(index)
            else:
                notes.append(f"The scheduler {values['scheduler']!r} is not available; {self.scheduler.currentText()} is kept.")
            self.steps.setValue(int(values["steps"]))
            self.guidance.setValue(float(values["guidance_scale"]))
            self.eta.setValue(float(values["eta"]))
            index = self.variance.findData(values["ddpm_variance"])
            self.variance.setCurrentIndex(max(index, 0))
            self.seed.setValue(RANDOM_SEED if values["seed"] is None else int(values["seed"]))
            native = info.native_size if info else (512, 512)
            width = values["width"] if values["width"] is not None else native[0]
            height = values["height"] if values["height"] is not None else native[1]
            self._select_size(int(width), int(height))
            self.batch_size.setValue(int(values["batch_size"]))
            if batch_count is not None:
                self.batch_count.setValue(batch_count)
            self._restore_classifier(str(values["classifier_target"]), float(values["classifier_scale"]))
            if not self.vae.select(vae):
                notes.append(f"The VAE {vae!r} is not available for this model, so its own is used; the image will differ.")
        except (TypeError, ValueError, OverflowError) as exc:  # a damaged recipe: keep what could be restored
            notes.append(f"Some settings could not be restored ({exc}).")
        finally:
            self._restoring = False
        self._on_change()
        return notes

    def _restore_classifier(self, target: str, scale: float) -> None:
        words = target.split()
        self.guidance_mode.setCurrentIndex(1 if words else 0)
        for combo in (self.target_colour, self.target_shape):
            combo.setCurrentIndex(0)
            for word in words:
                index = combo.findData(word)
                if index >= 0:
                    combo.setCurrentIndex(index)
        self.classifier_scale.setValue(scale)

    # ---- validation ---------------------------------------------------------------------------
    def _update_visibility(self) -> None:
        spec = SCHEDULERS.get(self.scheduler.currentText())
        info = self.model_info()
        classifier = bool(info and info.has_classifier)
        rows = {
            self.eta: bool(spec and spec.takes_eta),
            self.variance: bool(spec and spec.takes_variance),
            self.guidance_mode: classifier,
            self.classifier_row: classifier and self.guidance_mode.currentData() == "classifier",
            self.classifier_scale: classifier and self.guidance_mode.currentData() == "classifier",
            self.classifier_hint: (classifier and self.guidance_mode.currentData() == "classifier"
                                   and (bool(self.prompt.text().strip()) or self.guidance.value() != 1.0)),
            self.native_size_button: self._off_native_size() is not None,
            self.custom_row: self.size.currentData() is None,
            self.vae: self.vae.choices() > 0 or bool(self.vae.name()),
        }
        for widget, visible in rows.items():
            self.form.setRowVisible(widget, visible)
        native = self._off_native_size()
        if native is not None:
            self.native_size_button.setText(f"Use the model's native size, {native[0]}×{native[1]}")

    def _on_change(self, *_: object) -> None:
        if self._restoring:
            return
        self._update_visibility()
        self._update_prompt_help()
        info = self.model_info()
        problems = self.recipe().validate(info)
        for editor in self._editors:
            problems += editor.problems()
        if not self.model.count():
            problems = [p for p in problems if p.field != "model.id"]
            problems.insert(0, Problem("model.id", "no models found: add one in Settings → Model folders"))
        self._problems = problems
        by_field: dict[FieldError, list[str]] = {label: [] for label in set(self._errors.values())}
        edited = {name for editor in self._editors for name in editor.parts()}
        for editor in self._editors:
            editor.show_problems([p for p in problems if p.field.split(".")[0] in edited])
        for problem in problems:
            if problem.field.split(".")[0] in edited:
                continue
            label = self._errors.get(problem.field, self._errors["output.batch_size"])
            by_field[label].append(problem.message)
        for label, messages in by_field.items():
            label.show_problems(messages)
        self.reuse.setEnabled(self.last_seed is not None)
        self.validity_changed.emit(not problems)
        self.changed.emit()

    @property
    def restoring(self) -> bool:
        """True while ``set_recipe`` fills the controls (their change signals are not user edits)."""
        return self._restoring

    def problems(self) -> list[Problem]:
        return list(self._problems)

    def open_add_on_picker(self) -> AddOnPicker:
        """The LoRA / embedding picker (one, kept open beside the panel); it inserts at the cursor."""
        if self.add_on_picker is None:
            self.add_on_picker = AddOnPicker(self._catalog, self.model_info(), self)
            self.add_on_picker.insert_requested.connect(
                lambda target, text: insert_text(self.negative if target == "negative" else self.prompt, text))
        self.add_on_picker.show()
        return self.add_on_picker

    def set_last_seed(self, seed: int | None) -> None:
        self.last_seed = seed
        self.reuse.setEnabled(seed is not None)
