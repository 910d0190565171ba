"""The user's settings: one JSON file, read with a per-key fallback to the defaults.

A value that is missing, of the wrong type or out of range falls back to its default on its own,
so one bad key never resets the others. Writing is atomic (a temporary file, then a rename), so
a crash never leaves half a settings file. Nothing here imports Qt.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from desktop_app.core import paths
from desktop_app.core.options import DEVICES, PRECISIONS, PREVIEW_MODES

log = logging.getLogger(__name__)

THEMES = ("system", "light", "dark")
# "auto": a full decode for small models (64×64: it costs nothing there), the latent map otherwise
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

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir).expanduser() if self.output_dir.strip() else paths.default_output_dir()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        settings = cls()
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if _CHECKS[f.name](value):
                setattr(settings, f.name, float(value) if f.name == "preview_max_fps" else value)
            else:
                log.warning("settings: ignoring %s=%r (not valid); using the default", f.name, value)
        return settings

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        path = path or paths.settings_file()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("settings: %s cannot be read (%s); using the defaults", path, exc)
            return cls()
        if not isinstance(data, dict):
            log.warning("settings: %s does not hold a JSON object; using the defaults", path)
            return cls()
        return cls.from_dict(data)

    def save(self, path: Path | None = None) -> None:
        """Write atomically; raises OSError when the folder cannot be written."""
        path = path or paths.settings_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".settings-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh, indent=2, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
