"""Class 6: a folder the app cannot create (a file in the way, a read-only disk).

The command line says so on one line and exits with 2; the window, whose launcher has no
console, shows a dialog with the same words instead of dying unseen.
"""

from __future__ import annotations

import pytest

from desktop_app.cli.main import main
from tests.faults.conftest import listed_models, no_traceback, run_cli


def blocked_home(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    return blocker / "home"


def test_every_command_says_which_folder_and_exits_2(tmp_path):
    home = blocked_home(tmp_path)
    expected = (f"error: Diffuse Studio cannot create its folder {home / 'config'}: a file is in the way (it, or a "
                "folder above it, is a file). Move that file away, or set DIFFUSE_STUDIO_HOME to a folder you can "
                "write to.")
    for args in (["models"], ["generate", "--prompt", "a red circle"], ["gallery"]):
        result = run_cli(args, home)
        err = no_traceback(result)
        assert result.returncode == 2, (args, err)
        assert err.splitlines()[-1] == expected.replace("config", "data") if args == ["gallery"] else expected, args


def test_a_read_only_disk_is_said_plainly(small_disk):
    home = small_disk(64, read_only=True) / "home"
    result = run_cli(["models"], home)
    err = no_traceback(result)
    assert result.returncode == 2
    assert err.splitlines() == [f"error: Diffuse Studio cannot create its folder {home / 'config'}: Read-only file "
                                "system. Make that place writable, or set DIFFUSE_STUDIO_HOME to a folder you can "
                                "write to."]


def test_models_still_lists_the_built_in_model_when_only_the_data_folder_is_blocked(home, capsys):
    (home / "data").write_text("a file where the data folder should be")
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert listed_models(out) == ["shapes"]


@pytest.mark.expect_log(r"the window cannot start: Diffuse Studio cannot create its folder")
def test_the_window_shows_a_dialog_and_exits_2(tmp_path, monkeypatch, qtbot):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    home = blocked_home(tmp_path)
    monkeypatch.setenv("DIFFUSE_STUDIO_HOME", str(home))
    seen = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QMessageBox):
            seen.append((dialog.windowTitle(), dialog.text()))
            dialog.accept()
        else:
            QTimer.singleShot(20, answer)

    QTimer.singleShot(20, answer)
    assert main([]) == 2
    assert seen == [("Diffuse Studio cannot start",
                     f"Diffuse Studio cannot create its folder {home / 'config'}: a file is in the way (it, or a folder "
                     "above it, is a file). Move that file away, or set DIFFUSE_STUDIO_HOME to a folder you can write "
                     "to.")]
