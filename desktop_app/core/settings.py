"""The user's settings: one JSON file, read with a per-key fallback to the defaults.

A value that is missing, of the wrong type or out of range falls back to its default on its own,
so one bad key never resets the others; a damaged file is read for whatever keys are still whole,
kept aside, and the user is told (``Settings.load_note``, shown by the window). Writing is atomic
(a temporary file, then a rename), so a crash never leaves half a settings file. Nothing here
imports Qt.
"""

from __future__ import annotations

import errno
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from desktop_app.core import paths
from desktop_app.core.files import replace_file, write_new
from desktop_app.core.options import DEVICES, PRECISIONS, PREVIEW_MODES

log = logging.getLogger(__name__)

THEMES = ("system", "light", "dark")
# "auto": a full decode for small models (64×64: its latent map is too coarse), the latent map otherwise
PREVIEW_SETTINGS = ("auto", *PREVIEW_MODES)
SMALL_PREVIEW_AREA = 128 * 128


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda value: value in choices


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_fps(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 120


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 100


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _is_choices(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)


def _is_request(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and isinstance(value.get("prompt", ""), str))


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "last_request": _is_request,
    "batch_count": _is_count,
    "window_geometry": _is_str,
    "window_state": _is_str,
    "device": _one_of(DEVICES),
    "precision": _one_of(PRECISIONS),
    "preview_mode": _one_of(PREVIEW_SETTINGS),
    "preview_max_fps": _is_fps,
    "output_dir": _is_str,
    "extra_model_dirs": _is_str_list,
    "comfyui_servers": _is_str_list,
    "app_roots": _is_str_list,
    "app_roots_offered": _is_bool,
    "model_vaes": _is_str_map,
    "theme": _one_of(THEMES),
    "fast_mode": _is_bool,
    "low_vram": _is_bool,
    "first_run_done": _is_bool,
    "export_choices": _is_choices,
}


@dataclass
class Settings:
    last_request: dict[str, Any] | None = None  # the last run's Recipe, flat (Recipe.flat())
    batch_count: int = 1
    window_geometry: str = ""  # base64 of QMainWindow.saveGeometry()
    window_state: str = ""  # base64 of QMainWindow.saveState()
    device: str = "auto"
    precision: str = "auto"
    preview_mode: str = "auto"
    preview_max_fps: float = 20.0  # a cap: with steps just under 1/cap apart, half as many frames show
    output_dir: str = ""  # "" means paths.default_output_dir()
    extra_model_dirs: list[str] = field(default_factory=list)
    comfyui_servers: list[str] = field(default_factory=list)  # URLs; their tokens live in the system keyring
    # other apps' folders used in place (AUTOMATIC1111/Forge, ComfyUI, InvokeAI roots, a Hugging Face cache)
    app_roots: list[str] = field(default_factory=list)
    app_roots_offered: bool = False  # the first start offered the roots it found (asked once, never crawled)
    model_vaes: dict[str, str] = field(default_factory=dict)  # model id -> VAE file name ("" = its own)
    theme: str = "system"
    fast_mode: bool = False  # GPU fast path (compiled UNet); used where a GPU is present
    low_vram: bool = False  # model CPU offload and a tiled decode, for GPUs with little memory
    first_run_done: bool = False
    export_choices: dict[str, Any] = field(default_factory=dict)  # the gallery export dialog's last choices
    load_note: str = field(default="", compare=False, repr=False)  # for the user: what went wrong reading the file

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir).expanduser() if self.output_dir.strip() else paths.default_output_dir()

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CHECKS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        settings, _ = cls._checked(data)
        return settings

    @classmethod
    def _checked(cls, data: dict[str, Any]) -> tuple[Settings, list[str]]:
        """Settings from ``data``, each key on its own; also the names of the keys that were not valid."""
        settings = cls()
        rejected = []
        for name, check in _CHECKS.items():
            if name not in data:
                continue
            value = data[name]
            if check(value):
                setattr(settings, name, float(value) if name == "preview_max_fps" else value)
            else:
                rejected.append(name)
                log.warning("settings: ignoring %s=%.80r (not valid); using the default", name, value)
        return settings, rejected

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """The settings in ``path``, read key by key. A damaged file (or values that cannot be used)
        is kept aside as ``settings-damaged-<time>.json`` before anything overwrites it, and
        ``load_note`` tells the user what happened; it is never dropped silently."""
        path = path or paths.settings_file()
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except IsADirectoryError:
            return cls(load_note=f"The settings file {path} is a folder, so no settings can be read or kept. "
                                 "Remove or rename that folder.")
        except OSError as exc:
            log.warning("settings: %s cannot be read (%s); using the defaults", path, exc)
            return cls(load_note=f"The settings file {path} cannot be read ({exc.strerror or exc}); "
                                 "the defaults are used for now.")
        text = raw.decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
            damage = "" if isinstance(data, dict) else "it does not hold a set of named settings"
        except (ValueError, RecursionError) as exc:
            data, damage = _salvage(text), f"it is not valid JSON: {getattr(exc, 'msg', exc)}"
            log.warning("settings: %s cannot be read (%s); using what can be read of it", path, damage)
        settings, rejected = cls._checked(data if isinstance(data, dict) else {})
        if damage or rejected:
            settings.load_note = _keep_aside(path, raw, damage, rejected)
        return settings

    def save(self, path: Path | None = None) -> None:
        """Write atomically; raises OSError when the folder cannot be written. A new file gets the
        permissions the user's umask gives; an existing one keeps its own."""
        path = path or paths.settings_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, f"{path} is a folder, not a file", str(path))
        # ASCII with escapes: a folder name that is not UTF-8 comes back exactly
        replace_file(path, json.dumps(self.to_dict(), indent=2).encode("ascii"))


def _salvage(text: str) -> dict[str, Any]:
    """What can still be read from a damaged settings file (cut short, edited by hand): each known
    key whose value is still whole JSON."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] = {}
    for name in _CHECKS:
        for match in re.finditer(rf'"{name}"\s*:\s*', text):
            try:
                found[name], _ = decoder.raw_decode(text, match.end())
                break
            except ValueError:
                continue
    return found


def _keep_aside(path: Path, raw: bytes, damage: str, rejected: list[str]) -> str:
    """Keep the file as it was next to it (once: every later start finds the same copy); returns
    the note for the user."""
    try:
        same = [p for p in sorted(path.parent.glob("settings-damaged-*.json")) if p.read_bytes() == raw]
        aside = same[0].name if same else write_new(raw, path.parent, f"settings-damaged-{datetime.now():%Y%m%d-%H%M%S}.json").name
        kept = f"the file as it was is kept as {aside}"
    except OSError as exc:
        kept = f"it could not be kept aside ({exc.strerror or exc})"
    if damage:
        return (f"The settings file {path} is damaged ({damage}), so only the settings that could still be read "
                f"were used and the others are back to their defaults; {kept}.")
    return (f"Some settings in {path} could not be used ({', '.join(rejected)}), so they are back to their "
            f"defaults; {kept}.")
