"""Small pieces every reader of another tool's metadata uses.

Numbers arrive as ints, floats or strings ("6952411511246973023", "7.0") depending on the tool;
``put_int`` / ``put_float`` take all of them and report anything else as an error instead of
raising. Notes for settings that have no control here go into ``ImageMetadata.unknown`` as plain
sentences (``note``), so the user reads why a setting was not restored.
"""

from __future__ import annotations

import json
import math
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desktop_app.gallery.metadata import ImageMetadata
    from desktop_app.gallery.readers.samplers import SamplerMatch

MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin", ".pth", ".gguf", ".sft")
NO_CONTROL = "no control here"
_SHOWN_CHARS = 200  # a note quotes at most this much of a value


def model_stem(name: str) -> str:
    """``models/Stable-diffusion/sd_xl_base_1.0.safetensors`` → ``sd_xl_base_1.0``."""
    name = str(name).strip()
    path = PureWindowsPath(name) if "\\" in name else PurePosixPath(name)
    return path.stem if path.suffix.lower() in MODEL_SUFFIXES else path.name


def to_int(value: Any) -> int | None:
    """A whole number from an int, an integral float or a numeric string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and len(value) <= 40:
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = to_float(text)
            return int(number) if number is not None and number.is_integer() else None
    return None


def to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def put_int(result: ImageMetadata, target: str, value: Any, label: str = "") -> None:
    if value is None:
        return
    number = to_int(value)
    if number is None:
        result.errors.append(f"{label or target}: {show(value)} is not a whole number")
    else:
        result.request[target] = number


def put_float(result: ImageMetadata, target: str, value: Any, label: str = "") -> None:
    if value is None:
        return
    number = to_float(value)
    if number is None:
        result.errors.append(f"{label or target}: {show(value)} is not a number")
    else:
        result.request[target] = number


def put_text(result: ImageMetadata, target: str, value: Any, label: str = "") -> None:
    if value is None:
        return
    if isinstance(value, str):
        result.request[target] = value
    else:
        result.errors.append(f"{label or target}: {show(value)} is not text")


def put_scheduler(result: ImageMetadata, match: SamplerMatch) -> None:
    if match.name is not None:
        result.request["scheduler"] = match.name
    result.unknown.update(match.notes)


def show(value: Any) -> str:
    """A value as a note quotes it: text as is, anything else as compact JSON, cut when long."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
        except (TypeError, ValueError, RecursionError):
            text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def note(result: ImageMetadata, key: str, value: Any, why: str) -> None:
    """``unknown[key]``: "<value>: <why>; no control here"."""
    result.unknown[key] = f"{show(value)}: {why}; {NO_CONTROL}"


def is_set(value: Any) -> bool:
    """Whether a setting says anything (not None, False, 0, "" or empty)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return value not in (None, "", [], {}, "None", "none")


def note_rest(
    result: ImageMetadata, data: dict[str, Any], used: set[str], tool: str, quiet: frozenset[str]
) -> None:
    """A note for every setting of ``data`` that was neither read nor is known to be harmless."""
    for key, value in data.items():
        if key in used or key in quiet or key in result.unknown or not is_set(value):
            continue
        note(result, key, value, f"a {tool} setting")


def load_json_object(text: str) -> dict[str, Any] | None:
    """``text`` as a JSON object, or None when it is no JSON object at all (that is someone else's format)."""
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
