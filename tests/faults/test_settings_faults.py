"""Class 4: a damaged settings file is kept aside, read key by key, and the user is told.

The files are damaged for real: cut short in the middle of a value, a value of the wrong type, a
list instead of an object, bytes that are not UTF-8, a folder where the file should be. The
window opens every time, says what happened in its message bar, and what could be read (the
output folder, the model folders) survives the next save.
"""

from __future__ import annotations

import json

import pytest

from desktop_app.core import paths
from desktop_app.core.settings import Settings
from tests.faults.conftest import SHAPES

GOOD = {"output_dir": "/srv/pictures", "extra_model_dirs": ["/srv/models"], "theme": "dark", "device": "cpu",
        "first_run_done": True}


def open_window(qtbot, settings):
    from desktop_app.backend.fake import FakeBackend
    from desktop_app.backend.local.discovery import inspect_model
    from desktop_app.gallery.library import Library
    from desktop_app.gui.window import MainWindow

    window = MainWindow(settings, FakeBackend([inspect_model(SHAPES, "shapes")]), Library(settings.output_path),
                        start_engine=False)
    qtbot.addWidget(window)
    window.show()
    return window


def aside_files():
    return sorted(p.name for p in paths.config_dir().glob("settings-damaged-*.json"))


@pytest.mark.expect_log(r"settings: .*settings\.json cannot be read")
def test_a_settings_file_cut_short_keeps_what_can_be_read(qtbot):
    text = json.dumps(GOOD, indent=2)
    damaged = text[: text.index('"device"') + 12]  # cut in the middle of "device": "cpu"
    paths.settings_file().write_text(damaged, encoding="utf-8")
    settings = Settings.load()
    assert (settings.output_dir, settings.extra_model_dirs, settings.theme) == ("/srv/pictures", ["/srv/models"], "dark")
    (aside,) = aside_files()
    assert (paths.config_dir() / aside).read_text(encoding="utf-8") == damaged  # the file as it was
    note = (f"The settings file {paths.settings_file()} is damaged (it is not valid JSON: Unterminated string "
            "starting at), so only the settings that could still be read were used and the others are back to "
            f"their defaults; the file as it was is kept as {aside}.")
    window = open_window(qtbot, settings)
    try:
        assert note in window.messages.messages("error")
    finally:
        window.close()
    saved = json.loads(paths.settings_file().read_text())
    assert (saved["output_dir"], saved["extra_model_dirs"], saved["theme"]) == ("/srv/pictures", ["/srv/models"], "dark")


@pytest.mark.expect_log(r"settings: ignoring output_dir=5")
def test_a_value_of_the_wrong_type_is_dropped_alone_and_said(qtbot):
    paths.settings_file().write_text(json.dumps({**GOOD, "output_dir": 5}), encoding="utf-8")
    settings = Settings.load()
    assert settings.output_dir == "" and settings.theme == "dark" and settings.extra_model_dirs == ["/srv/models"]
    (aside,) = aside_files()
    assert settings.load_note == (f"Some settings in {paths.settings_file()} could not be used (output_dir), so they "
                                  f"are back to their defaults; the file as it was is kept as {aside}.")


@pytest.mark.parametrize("content", [b"[1, 2, 3]", b"\xff\xfe{\"theme\": \"dark\"}", b"", b"{" * 100_000])
@pytest.mark.expect_log(r"settings: .* cannot be read")
def test_other_damage_keeps_the_file_and_tells(content):
    paths.settings_file().write_bytes(content)
    settings = Settings.load()
    assert settings.load_note.startswith(f"The settings file {paths.settings_file()} is damaged (")
    (aside,) = aside_files()
    assert (paths.config_dir() / aside).read_bytes() == content
    if content.startswith(b"\xff"):
        assert settings.theme == "dark"  # the rest of the file was still readable


@pytest.mark.expect_log(r"settings could not be saved")
def test_a_folder_where_the_settings_file_should_be(qtbot):
    paths.settings_file().mkdir()
    settings = Settings.load()
    window = open_window(qtbot, settings)
    try:
        assert window.messages.messages("error")[0] == (
            f"The settings file {paths.settings_file()} is a folder, so no settings can be read or kept. "
            "Remove or rename that folder.")
        window.panel.prompt.setPlainText("a red circle")
        window.generate_button.click()  # saves the settings: it cannot, and says so once
        assert window.messages.messages("error")[1] == (
            f"Settings could not be saved ({paths.settings_file()} is a folder, not a file); changes last until "
            "the window closes.")
    finally:
        window.close()
    assert paths.settings_file().is_dir()


@pytest.mark.parametrize("last", [{"prompt": "x", "steps": 10**30}, {"prompt": "x", "seed": 1e300},
                                  {"prompt": "x", "width": -(10**40), "guidance_scale": "high"}])
def test_a_last_recipe_with_impossible_numbers_still_opens_the_window(qtbot, last):
    paths.settings_file().write_text(json.dumps({"last_request": last, "first_run_done": True}))
    window = open_window(qtbot, Settings.load())
    try:
        assert window.panel.prompt.toPlainText() == "x"
        assert any("could not be restored" in m for m in window.messages.messages("info"))
    finally:
        window.close()


@pytest.mark.expect_log(r"settings: .*settings\.json cannot be read")
def test_the_command_line_says_so_and_keeps_one_copy_however_often_it_runs(capsys):
    from desktop_app.cli.main import main

    paths.settings_file().write_text('{"theme": "dark", "extra_model_dirs": ["/srv/mod', encoding="utf-8")
    for _ in range(3):
        assert main(["models"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    (aside,) = aside_files()
    assert len(notes) == 3 and all(line.endswith(f"the file as it was is kept as {aside}.") for line in notes)
