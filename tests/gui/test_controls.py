"""The parameters panel alone: classifier guidance controls, size presets, the settings dialog."""

from __future__ import annotations

import dataclasses

import pytest

from desktop_app.backend.local.discovery import inspect_model
from desktop_app.core.models import ModelCatalog as Discovery
from desktop_app.core.settings import Settings
from desktop_app.gui.controls import ParametersPanel, size_presets
from desktop_app.gui.dialogs import SettingsDialog
from tests.gui.conftest import shown


@pytest.fixture
def tiny_info(tiny_model):
    return inspect_model(tiny_model)


@pytest.fixture
def panel(qtbot):
    panel = ParametersPanel()
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_classifier_guidance_appears_only_for_a_model_with_a_classifier(panel, tiny_info):
    labels = {"colour": ["red", "blue"], "shape": ["circle", "square"]}
    with_classifier = dataclasses.replace(tiny_info, id="shapes-like", classifier_labels=labels)
    panel.set_models(Discovery([tiny_info, with_classifier], []))
    panel.model.setCurrentIndex(0)
    assert not panel.guidance_mode.isVisible()
    panel.model.setCurrentIndex(1)
    assert panel.guidance_mode.isVisible() and not panel.classifier_row.isVisible()
    panel.guidance_mode.setCurrentIndex(1)
    assert panel.classifier_row.isVisible()
    panel.target_colour.setCurrentIndex(panel.target_colour.findData("blue"))
    panel.target_shape.setCurrentIndex(panel.target_shape.findData("circle"))
    panel.classifier_scale.setValue(3.0)
    r = shown(panel)
    assert (r.classifier_target, r.classifier_scale, r.model_id) == ("blue circle", 3.0, "shapes-like")
    assert panel.problems() == []
    panel.set_recipe({**vars(r), "classifier_target": "", "classifier_scale": 0.0})
    assert shown(panel).classifier_target == "" and not panel.classifier_row.isVisible()


def test_size_presets_are_valid_for_the_model(tiny_info):
    presets = size_presets(tiny_info)
    assert presets[0] == (64, 64, "native")
    for w, h, _ in presets:
        assert w % tiny_info.latent_factor == 0 and h % tiny_info.latent_factor == 0


def test_seed_buttons(panel, tiny_info):
    panel.set_models(Discovery([tiny_info], []))
    assert shown(panel).seed is None and not panel.reuse.isEnabled()
    panel.dice.click()
    assert shown(panel).seed is not None
    panel.set_last_seed(77)
    panel.reuse.click()
    assert shown(panel).seed == 77
    panel.random_seed.click()
    assert shown(panel).seed is None


def test_no_models_at_all_says_where_to_add_one(panel):
    panel.set_models(Discovery([], []))
    assert any("Settings" in p.message for p in panel.problems() if p.field == "model.id")


def test_settings_dialog_returns_the_edited_settings(qtbot, tmp_path):
    dialog = SettingsDialog(Settings(extra_model_dirs=["/a"]))
    qtbot.addWidget(dialog)
    dialog.device.setCurrentText("cpu")
    dialog.theme.setCurrentText("dark")
    dialog.preview.setCurrentIndex(dialog.preview.findData("off"))
    dialog.output.setText(str(tmp_path))
    dialog.folders.addItem("/b")
    dialog.fast_mode.setChecked(True)
    dialog.low_vram.setChecked(True)
    s = dialog.result_settings()
    assert (s.device, s.theme, s.preview_mode, s.output_dir, s.extra_model_dirs, s.fast_mode, s.low_vram) == (
        "cpu", "dark", "off", str(tmp_path), ["/a", "/b"], True, True)


def test_canvas_fits_or_shows_one_to_one(qtbot):
    from PySide6.QtGui import QColor, QImage

    from desktop_app.gui.canvas import PreviewCanvas

    canvas = PreviewCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.show()
    image = QImage(64, 64, QImage.Format.Format_RGB888)
    image.fill(QColor("red"))
    canvas.show_image(image)
    assert canvas.view.target_rect().height() == 64 * (canvas.view.height() // 64)  # up by a whole factor
    canvas.show_image(image, preview=True)  # a preview is smoothed to the full height instead
    assert canvas.view.target_rect().height() == canvas.view.height()
    canvas.set_fit(False)
    assert canvas.view.target_rect().width() == 64 and not canvas.widgetResizable()


def test_fields_without_a_control_survive_a_restore(panel, tiny_info):
    panel.set_models(Discovery([tiny_info], []))
    from desktop_app.core.recipe import AddOn, Source

    panel.set_recipe({"prompt": "x", "model_id": tiny_info.id, "noise_seed_delta": 31337, "preview_every": 3,
                      "add_ons": [{"kind": "lora", "name": "ink", "weight": 0.5}], "source": {"image": "/in.png"}})
    recipe = panel.recipe()
    assert recipe.sampling.noise_seed_delta == 31337
    assert recipe.model.add_ons == (AddOn("lora", "ink", 0.5),) and recipe.source == Source("/in.png")
