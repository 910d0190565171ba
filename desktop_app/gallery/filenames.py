"""Safe file names: whatever a prompt or a template holds, the result is one plain file name.

A name made here has no path separators, no ``..``, no control characters, is not a name that
Windows reserves (``CON``, ``NUL``, ``COM1``…, with any extension), does not end in a dot or a
space, and fits in ``max_bytes`` UTF-8 bytes (most file systems allow 255 per name).
"""

from __future__ import annotations

import re
import string
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

MAX_NAME_BYTES = 200  # leaves room for a suffix and "-NNN" below the usual 255-byte limit
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{stem}{n}" for stem in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")
}
_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_SPACES = re.compile(r"[\s_]+")


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def safe_name(text: str, *, max_bytes: int = MAX_NAME_BYTES, fallback: str = "image") -> str:
    """``text`` as one safe file name component (no extension handling; see ``safe_filename``)."""
    text = unicodedata.normalize("NFC", str(text))
    text = _FORBIDDEN.sub("_", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"))
    text = _SPACES.sub("_", text).strip("._ -")
    while ".." in text:
        text = text.replace("..", ".")
    text = _truncate_utf8(text, max_bytes).rstrip(". ")
    if not text:
        text = fallback
    if text.split(".")[0].upper().rstrip(" ") in _WINDOWS_RESERVED:
        text = f"_{text}"
    return text


def safe_filename(stem: str, suffix: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A safe ``stem`` plus ``suffix`` (e.g. ".png"), the whole name within ``max_bytes``."""
    suffix = suffix if suffix.startswith(".") or not suffix else f".{suffix}"
    return safe_name(stem, max_bytes=max_bytes - len(suffix.encode("utf-8"))) + suffix


def prompt_slug(prompt: str, max_chars: int = 60) -> str:
    words = re.sub(r"[^\w\s-]", " ", prompt, flags=re.UNICODE).split()
    return safe_name("_".join(words)[:max_chars], fallback="untitled")


class _Fields(string.Formatter):
    """``{name}`` fields from a dict; an unknown field is left visible instead of failing."""

    def get_value(self, key: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        return kwargs.get(key, f"{{{key}}}") if isinstance(key, str) else super().get_value(key, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> str:
        if not _modest(format_spec):  # "{index:200000000}" would build a 200 MB name first
            return str(value)
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError, OverflowError):
            return str(value)


# Python's format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[a-zA-Z%]?", re.DOTALL)
MAX_SPEC_DIGITS = 64  # width and precision: more can never fit in a file name


def _modest(format_spec: str) -> bool:
    match = _SPEC.fullmatch(format_spec)
    if match is None:
        return True  # not a valid spec: format_field refuses it and the plain value is used
    return all(len(n) <= 3 and int(n) <= MAX_SPEC_DIGITS for n in (match["width"], match["precision"]) if n)


TEMPLATE_FIELDS = ("date", "time", "seed", "prompt", "model", "scheduler", "steps", "cfg", "width", "height", "index", "name")


def render_template(template: str, fields: dict[str, Any], suffix: str) -> str:
    """A file name from ``template`` (e.g. ``{date}_{seed}_{prompt}``), made safe.

    Each field value is made safe on its own first, so a prompt holding ``/`` or ``..`` cannot
    reach outside the target folder; then the whole name is made safe again.
    """
    safe_fields = {k: safe_name(str(v), max_bytes=120, fallback="x") if k != "index" else v for k, v in fields.items()}
    if "prompt" in fields:
        safe_fields["prompt"] = prompt_slug(str(fields["prompt"]))
    try:
        stem = _Fields().format(template, **safe_fields)
    except (ValueError, IndexError, KeyError):
        stem = template  # an unbalanced "{" etc.: use the template literally, made safe below
    return safe_filename(stem, suffix)


def template_fields(record: dict[str, Any], index: int = 0, when: datetime | None = None) -> dict[str, Any]:
    """The template fields for one image from an index record / request dict."""
    when = when or datetime.fromtimestamp(record.get("created") or 0)
    path = Path(record.get("path") or "image")
    return {
        "date": when.strftime("%Y-%m-%d"),
        "time": when.strftime("%H%M%S"),
        "seed": record.get("seed", ""),
        "prompt": record.get("prompt", ""),
        "model": record.get("model_id", ""),
        "scheduler": record.get("scheduler", ""),
        "steps": record.get("steps", ""),
        "cfg": record.get("guidance_scale", ""),
        "width": record.get("width", ""),
        "height": record.get("height", ""),
        "index": index,
        "name": path.stem,
    }


def unique_path(folder: Path, name: str, taken: set[str] | None = None) -> Path:
    """``folder / name``, or ``name-2``, ``name-3``… when that file exists or is ``taken``."""
    taken = taken if taken is not None else set()
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while (folder / candidate).exists() or candidate.lower() in taken:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    taken.add(candidate.lower())
    return folder / candidate
