"""Choices the user made once for a model file, kept for next time (torch-free: the window answers).

An SD 2.x checkpoint that does not say whether it predicts the noise (ε, the 512-pixel releases) or
the velocity (v, the 768-pixel ones) cannot be told apart by its shapes: the user says so once and
the answer is kept per file (its real path and size) in the config folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from desktop_app.core import paths

PREDICTIONS = {"epsilon": "ε (noise; the 512-pixel SD 2.x models)", "v_prediction": "v (velocity; the 768-pixel ones)"}


def _choices_file() -> Path:
    return paths.config_dir() / "prediction-types.json"


def _choice_key(path: Path) -> str:
    real = os.path.realpath(path)
    return f"{real}|{os.stat(real).st_size}"


def remembered_prediction(path: Path | str) -> str | None:
    """The prediction type the user chose for this file ("epsilon" / "v_prediction"), if any."""
    try:
        choices = json.loads(_choices_file().read_text(encoding="utf-8"))
        return choices.get(_choice_key(Path(path)))
    except (OSError, ValueError, AttributeError):
        return None


def remember_prediction(path: Path | str, prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be 'epsilon' or 'v_prediction', not {prediction!r}")
    file = _choices_file()
    try:
        choices = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        choices = {}
    if not isinstance(choices, dict):
        choices = {}
    choices[_choice_key(Path(path))] = prediction
    partial = file.with_name(file.name + ".partial")
    partial.write_text(json.dumps(choices, indent=1), encoding="utf-8")
    partial.replace(file)
