"""Read a desktop entry's Exec line back into an argument list, as a desktop environment does."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

_STRING_ESCAPES = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\", ";": ";"}


def read_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def _unescape_string(value: str) -> str:
    out, chars = [], iter(value)
    for c in chars:
        out.append(_STRING_ESCAPES.get(next(chars, ""), "") if c == "\\" else c)
    return "".join(out)


def split_exec(value: str) -> list[str]:
    """Split an Exec value (Desktop Entry Specification 1.4, "The Exec key"); field codes are dropped."""
    text = _unescape_string(value)
    args: list[str] = []
    current: list[str] = []
    in_arg = quoted = False
    chars = iter(text)
    for c in chars:
        if quoted:
            if c == "\\":
                current.append(next(chars))
            elif c == '"':
                quoted = False
            else:
                current.append(c)
        elif c == '"':
            quoted = in_arg = True
        elif c == " ":
            if in_arg:
                args.append("".join(current))
                current, in_arg = [], False
        else:
            current.append(c)
            in_arg = True
    assert not quoted, f"unterminated quote in Exec={value!r}"
    if in_arg:
        args.append("".join(current))
    return [_drop_field_codes(a) for a in args if a not in ("%f", "%F", "%u", "%U", "%i", "%c", "%k")]


def _drop_field_codes(arg: str) -> str:
    return re.sub(r"%(.)", lambda m: "%" if m.group(1) == "%" else "", arg)
