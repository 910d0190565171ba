"""Add Diffuse Studio to the desktop menu on Linux (and other freedesktop desktops), or remove it.

``diffuse-studio --install-desktop-entry`` writes a ``.desktop`` file into
``$XDG_DATA_HOME/applications`` and the icon, in every size, into
``$XDG_DATA_HOME/icons/hicolor``; ``--uninstall-desktop-entry`` removes exactly those files.
The entry's ``Exec`` line names the program that is running now (the ``diffuse-studio``
launcher of this environment, ``python -m desktop_app``, or a bundle's executable), by absolute
path, so a menu click starts the same installation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from desktop_app.core import paths
from desktop_app.core.paths import DESKTOP_ID

ICON_NAME = "diffuse-studio"
LAUNCHER_NAME = "diffuse-studio"

# Everything but the Exec/TryExec lines; packaging/linux/<DESKTOP_ID>.desktop holds the same
# keys (tests compare them) with a plain ``Exec=diffuse-studio`` for distribution packages.
ENTRY_KEYS = {
    "Type": "Application",
    "Version": "1.4",
    "Name": "Diffuse Studio",
    "GenericName": "Image Generator",
    "Comment": "Make images from text with latent diffusion models on your own machine",
    "Icon": ICON_NAME,
    "Terminal": "false",
    "Categories": "Graphics;2DGraphics;RasterGraphics;",
    "Keywords": "diffusion;stable diffusion;AI;image;generate;text-to-image;",
    "StartupNotify": "true",
}


@dataclass(frozen=True)
class EntryFiles:
    """Where the entry's files go for one data folder."""

    data_home: Path

    @property
    def desktop_file(self) -> Path:
        return self.data_home / "applications" / f"{DESKTOP_ID}.desktop"

    @property
    def icon_theme(self) -> Path:
        return self.data_home / "icons" / "hicolor"

    def icon_files(self) -> dict[Path, Path]:
        """Installed icon path → the shipped file it is copied from."""
        shipped = paths.resource_path("icons", "hicolor")
        files = {
            self.icon_theme / "scalable" / "apps" / f"{ICON_NAME}.svg": paths.resource_path(
                "icons", f"{ICON_NAME}.svg"
            )
        }
        for png in sorted(shipped.glob(f"*/apps/{ICON_NAME}.png")):
            files[self.icon_theme / png.relative_to(shipped)] = png
        return files

    def installed_files(self) -> list[Path]:
        """What is there now, whichever version of the app put it there (sizes may have changed)."""
        icons = sorted(p for ext in ("png", "svg") for p in self.icon_theme.glob(f"*/apps/{ICON_NAME}.{ext}"))
        return [path for path in (self.desktop_file, *icons) if path.is_file()]


def xdg_data_home() -> Path:
    value = os.environ.get("XDG_DATA_HOME", "").strip()
    # The spec says a relative value is invalid and must be ignored.
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / ".local" / "share"


def launch_command() -> list[str]:
    """The command, by absolute paths, that starts this installation of the app."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: its own executable
        return [str(Path(sys.executable).resolve())]
    # Not resolved: a virtual environment's python is a symlink, and only the link knows the venv.
    python = Path(sys.executable).absolute()
    launcher = python.parent / LAUNCHER_NAME
    if launcher.is_file() and os.access(launcher, os.X_OK):
        return [str(launcher)]
    return [str(python), "-m", "desktop_app"]


def quote_exec_argument(arg: str) -> str:
    """Quote one argument for an Exec key (Desktop Entry Specification, "The Exec key")."""
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    if arg and not reserved.intersection(arg):
        quoted = arg
    else:
        quoted = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    # Then the general rules for string values: a backslash is itself escaped, % is doubled.
    return quoted.replace("\\", "\\\\").replace("%", "%%")


def render_entry(command: list[str]) -> str:
    exec_line = " ".join(quote_exec_argument(a) for a in command)
    lines = ["[Desktop Entry]"]
    for key, value in ENTRY_KEYS.items():
        lines.append(f"{key}={value}")
        if key == "Icon":
            lines.append(f"TryExec={quote_exec_argument(command[0])}")
            lines.append(f"Exec={exec_line}")
    return "\n".join(lines) + "\n"


def install_entry(data_home: Path | None = None, command: list[str] | None = None) -> list[Path]:
    """Write the desktop file and icons; returns the files written."""
    files = EntryFiles(data_home or xdg_data_home())
    written = []
    for target, source in files.icon_files().items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    files.desktop_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = files.desktop_file.with_suffix(".tmp")
    tmp.write_text(render_entry(command or launch_command()), encoding="utf-8")
    tmp.chmod(0o755)  # some file managers only trust executable .desktop files
    tmp.replace(files.desktop_file)
    written.append(files.desktop_file)
    _refresh_caches(files)
    return written


def uninstall_entry(data_home: Path | None = None) -> list[Path]:
    """Remove the files ``install_entry`` writes; returns those that were there."""
    files = EntryFiles(data_home or xdg_data_home())
    removed = files.installed_files()
    for path in removed:
        path.unlink()
    _refresh_caches(files)
    return removed


def _refresh_caches(files: EntryFiles) -> None:
    """Tell icon themes that something changed (menus watch the applications folder themselves)."""
    if files.icon_theme.is_dir():
        os.utime(files.icon_theme)  # theme caches compare the folder's time
        if (files.icon_theme / "index.theme").exists() and shutil.which("gtk-update-icon-cache"):
            subprocess.run(
                ["gtk-update-icon-cache", "-q", "-t", str(files.icon_theme)],
                check=False,
                capture_output=True,
                timeout=30,
            )


def run(install: bool) -> int:
    """The ``--install-desktop-entry`` / ``--uninstall-desktop-entry`` command; returns the exit status."""
    if sys.platform in ("win32", "darwin"):
        print(
            "error: desktop entries are for Linux desktops; on Windows and macOS use the bundle "
            "(see the README, 'Build a bundle').",
            file=sys.stderr,
        )
        return 2
    try:
        if install:
            written = install_entry()
            print(f"Added Diffuse Studio to the menu: {written[-1]}")
            print(f"It starts: {' '.join(launch_command())}")
        elif uninstall_entry():
            print("Removed Diffuse Studio from the menu.")
        else:
            print("Diffuse Studio was not in the menu; nothing to remove.")
    except OSError as exc:
        print(f"error: could not change the menu entry: {exc}", file=sys.stderr)
        return 1
    return 0
