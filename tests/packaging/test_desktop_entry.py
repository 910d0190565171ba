"""`--install-desktop-entry` / `--uninstall-desktop-entry` in a temporary XDG_DATA_HOME, and the
installed entry's Exec line really starting the app and showing its window (offscreen)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from exec_line import read_entry, split_exec  # tests/packaging is on sys.path (no __init__.py)

from desktop_app.cli import desktop_entry
from desktop_app.cli.main import main

PROBE = Path(__file__).resolve().parent / "window_probe"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

pytestmark = pytest.mark.skipif(
    sys.platform in ("win32", "darwin"), reason="desktop entries are for Linux desktops"
)


@pytest.fixture
def data_home(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    return folder


def _installed_files(data_home: Path) -> list[Path]:
    icons = data_home / "icons" / "hicolor"
    return [
        data_home / "applications" / f"{desktop_entry.DESKTOP_ID}.desktop",
        icons / "scalable" / "apps" / "diffuse-studio.svg",
        *(icons / f"{s}x{s}" / "apps" / "diffuse-studio.png" for s in SIZES),
    ]


def test_install_writes_the_desktop_file_and_every_icon(data_home, capsys):
    assert main(["--install-desktop-entry"]) == 0
    for path in _installed_files(data_home):
        assert path.is_file() and path.stat().st_size > 0, path
    entry = read_entry(_installed_files(data_home)[0])
    assert entry["Name"] == "Diffuse Studio" and entry["Icon"] == "diffuse-studio"
    command = split_exec(entry["Exec"])
    assert Path(command[0]).is_absolute() and os.access(command[0], os.X_OK)
    assert command == desktop_entry.launch_command()
    assert "Added Diffuse Studio to the menu" in capsys.readouterr().out


def test_installing_twice_is_fine(data_home):
    assert main(["--install-desktop-entry"]) == 0
    assert main(["--install-desktop-entry"]) == 0
    assert not list((data_home / "applications").glob("*.tmp"))


def test_uninstall_removes_exactly_what_install_wrote(data_home, capsys):
    other_app = data_home / "applications" / "org.example.Other.desktop"
    other_icon = data_home / "icons" / "hicolor" / "48x48" / "apps" / "other.png"
    for path in (other_app, other_icon):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not ours")
    assert main(["--install-desktop-entry"]) == 0
    assert main(["--uninstall-desktop-entry"]) == 0
    assert not any(path.exists() for path in _installed_files(data_home))
    assert other_app.read_text() == other_icon.read_text() == "not ours"
    assert "Removed Diffuse Studio from the menu" in capsys.readouterr().out


def test_uninstall_also_removes_icon_sizes_an_older_version_installed(data_home):
    assert main(["--install-desktop-entry"]) == 0
    old_size = data_home / "icons" / "hicolor" / "22x22" / "apps" / "diffuse-studio.png"
    old_size.parent.mkdir(parents=True)
    old_size.write_bytes(b"png")
    assert main(["--uninstall-desktop-entry"]) == 0
    assert not old_size.exists()


def test_uninstall_when_not_installed_says_so(data_home, capsys):
    assert main(["--uninstall-desktop-entry"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_a_relative_xdg_data_home_is_ignored_as_the_spec_says(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", "relative/share")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert desktop_entry.xdg_data_home() == tmp_path / ".local" / "share"


def test_launch_command_of_a_bundle_is_its_executable(monkeypatch, tmp_path):
    exe = tmp_path / "diffuse-studio"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    assert desktop_entry.launch_command() == [str(exe)]


def test_launch_command_without_a_launcher_runs_the_module(monkeypatch, tmp_path):
    python = tmp_path / "bin" / "python3"
    monkeypatch.setattr(sys, "executable", str(python))
    assert desktop_entry.launch_command() == [str(python), "-m", "desktop_app"]


def test_the_exec_line_starts_the_app_and_shows_its_window(data_home, home, tmp_path):
    assert main(["--install-desktop-entry"]) == 0
    command = split_exec(read_entry(_installed_files(data_home)[0])["Exec"])
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "DIFFUSE_STUDIO_HOME": str(home),
        "DIFFUSE_STUDIO_WINDOW_PROBE": "1",
        "PYTHONPATH": os.pathsep.join([str(PROBE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    # A desktop environment starts the entry from the home folder, not from the checkout.
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WINDOW Diffuse Studio" in result.stdout.splitlines(), result.stdout + result.stderr
