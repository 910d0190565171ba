"""Where Diffuse Studio keeps its files.

Every folder comes from platformdirs, except when ``DIFFUSE_STUDIO_HOME`` is set: then config,
data, cache, logs and the default output folder all live below that one folder. Tests set it to
a temporary directory so they never touch the real home folder.

Resource lookup (``resources/``, shipped ``models/``) is also here, in one place, so it works from
a checkout, an installed wheel and a PyInstaller bundle alike.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "Diffuse Studio"
APP_SLUG = "diffuse-studio"
DESKTOP_ID = "io.github.diffusestudio.DiffuseStudio"  # the freedesktop/AppStream id
HOME_ENV = "DIFFUSE_STUDIO_HOME"


def _home_override() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


class FolderError(OSError):
    """One of the app's own folders cannot be made; ``strerror`` is the message for the user."""


def _ensure(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            problem, fix = "a file is in the way (it, or a folder above it, is a file)", "Move that file away"
        else:
            problem, fix = exc.strerror or str(exc), "Make that place writable"
        raise FolderError(exc.errno, f"Diffuse Studio cannot create its folder {path}: {problem}. {fix}, or set "
                                     f"{HOME_ENV} to a folder you can write to.", str(path)) from exc
    return path


def config_dir() -> Path:
    home = _home_override()
    return _ensure(home / "config" if home else Path(platformdirs.user_config_dir(APP_SLUG, appauthor=False)))


def data_dir() -> Path:
    home = _home_override()
    return _ensure(home / "data" if home else Path(platformdirs.user_data_dir(APP_SLUG, appauthor=False)))


def cache_dir() -> Path:
    home = _home_override()
    return _ensure(home / "cache" if home else Path(platformdirs.user_cache_dir(APP_SLUG, appauthor=False)))


def log_dir() -> Path:
    home = _home_override()
    return _ensure(home / "logs" if home else Path(platformdirs.user_log_dir(APP_SLUG, appauthor=False)))


def default_output_dir() -> Path:
    """The Pictures folder / "Diffuse Studio" (not created until something is saved)."""
    home = _home_override()
    if home:
        return home / "pictures"
    return Path(platformdirs.user_pictures_dir()) / APP_NAME


def user_models_dir(*, create: bool = True) -> Path:
    """The user's own models folder (made unless ``create`` is False: looking needs no folder)."""
    if create:
        return _ensure(data_dir() / "models")
    home = _home_override()
    return (home / "data" if home else Path(platformdirs.user_data_dir(APP_SLUG, appauthor=False))) / "models"


def settings_file() -> Path:
    return config_dir() / "settings.json"


def _install_roots() -> list[Path]:
    """Folders that may hold ``resources/`` and ``models/``, most specific first."""
    roots: list[Path] = []
    bundle = getattr(sys, "_MEIPASS", None)  # set by a PyInstaller bundle
    if bundle:
        roots.append(Path(bundle))
    package = Path(__file__).resolve().parent.parent  # desktop_app/
    roots.append(package / "_data")  # an installed wheel carries them here
    roots.append(package.parent)  # a source checkout
    return roots


def resource_path(*parts: str) -> Path:
    """A file or folder under ``resources/``; raises FileNotFoundError naming where it looked."""
    tried = []
    for root in _install_roots():
        candidate = root.joinpath("resources", *parts)
        if candidate.exists():
            return candidate
        tried.append(str(candidate))
    raise FileNotFoundError(f"resource {'/'.join(parts)!r} not found; looked in: {', '.join(tried)}")


def shipped_models_dir() -> Path | None:
    """The ``models/`` folder that ships with the app (the built-in model lives there)."""
    for root in _install_roots():
        candidate = root / "models"
        if candidate.is_dir():
            return candidate
    return None
