"""Settings: per-key fallback, atomic writes, and surviving a restart of the window."""

from __future__ import annotations

import json

import pytest

from desktop_app.core import paths
from desktop_app.core.settings import Settings
from tests.gui.conftest import shown


@pytest.mark.expect_log(r"settings: ignoring (device|preview_max_fps|first_run_done)=")
def test_a_bad_value_falls_back_to_its_default_alone():
    paths.settings_file().write_text(json.dumps({"device": "quantum", "theme": "dark", "preview_max_fps": -3,
                                                 "extra_model_dirs": ["/x"], "first_run_done": "yes"}))
    s = Settings.load()
    assert (s.device, s.theme, s.preview_max_fps, s.extra_model_dirs, s.first_run_done) == ("auto", "dark", 20.0, ["/x"], False)


@pytest.mark.expect_log(r"settings\.json cannot be read")
def test_unreadable_file_gives_defaults_and_save_is_atomic():
    paths.settings_file().write_text("{not json")
    assert Settings.load() == Settings()
    Settings(theme="light").save()
    assert Settings.load().theme == "light"
    names = sorted(p.name for p in paths.config_dir().iterdir())  # the damaged file is kept aside, no temp file
    assert len(names) == 2 and names[0].startswith("settings-damaged-") and names[1] == "settings.json"


def test_settings_survive_a_restart(qtbot, make_window, settings):
    window = make_window(settings, start_engine=False)
    panel = window.panel
    panel.prompt.setPlainText("a yellow star")
    panel.negative.setPlainText("blurry")
    panel.scheduler.setCurrentText("DDIM")
    panel.eta.setValue(0.4)
    panel.steps.setValue(17)
    panel.guidance.setValue(5.5)
    panel.seed.setValue(4242)
    panel.batch_size.setValue(2)
    panel.batch_count.setValue(3)
    window.schedule_dock.hide()
    window.close()

    again = make_window(Settings.load(), start_engine=False, model=None, steps=17)
    r = shown(again.panel)
    assert (r.prompt, r.negative_prompt, r.scheduler, r.eta, r.steps, r.guidance_scale, r.seed, r.batch_size) == (
        "a yellow star", "blurry", "DDIM", 0.4, 17, 5.5, 4242, 2)
    assert r.model_id == "tiny"
    assert again.panel.batch_count.value() == 3
    assert again.panel.eta.isVisible()
    assert not again.schedule_dock.isVisible()
    assert Settings.load().device == "cpu"


def test_the_settings_dialog_adds_and_removes_servers(qtbot, make_window, settings):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDialogButtonBox

    from desktop_app.gui.dialogs import SettingsDialog

    settings.comfyui_servers = ["http://old-box:8188"]
    window = make_window(settings, start_engine=False)
    (file_menu,) = [a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "File"]
    (settings_item,) = [a for a in file_menu.actions() if a.text().replace("&", "") == "Settings…"]
    settings_item.trigger()  # File → Settings…
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(SettingsDialog)), timeout=5_000)
    (dialog,) = [d for d in window.findChildren(SettingsDialog) if d.isVisible()]
    qtbot.keyClicks(dialog.server_entry, "ftp://nowhere")
    qtbot.mouseClick(dialog.add_server_button, Qt.MouseButton.LeftButton)
    assert dialog.server_error.isVisible() and "http:// or https://" in dialog.server_error.text()
    assert dialog.servers.count() == 1
    dialog.server_entry.clear()
    qtbot.keyClicks(dialog.server_entry, "gpu-box")
    qtbot.mouseClick(dialog.add_server_button, Qt.MouseButton.LeftButton)
    assert not dialog.server_error.isVisible()
    assert [dialog.servers.item(k).text() for k in range(dialog.servers.count())] == ["http://old-box:8188",
                                                                                      "http://gpu-box:8188"]
    dialog.servers.setCurrentRow(0)
    qtbot.mouseClick(dialog.remove_server_button, Qt.MouseButton.LeftButton)
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.settings.comfyui_servers == ["http://gpu-box:8188"], timeout=5_000)
    assert Settings.load().comfyui_servers == ["http://gpu-box:8188"]
    assert any("connect the next time" in text for text in window.messages.messages())
