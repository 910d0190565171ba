"""Text that came from outside: file names that are not UTF-8, and control characters.

Python hands a file name or an argument that is not valid UTF-8 over as a string holding "lone
surrogates" (U+DC80…U+DCFF, one per undecodable byte). Such a string is fine for ``open`` and
``os.rename``, which give the bytes back, but it breaks every UTF-8 encoder: SQLite, a tokenizer,
a JSON or PNG writer, the terminal. And text read from a file may hold control characters that a
terminal obeys (an escape sequence clears the screen or sets the window title).

- ``undecodable(text)``: where such bytes are, so a prompt can be refused with a message;
- ``storable(text)``: text any UTF-8 encoder takes (each undecodable byte becomes U+FFFD);
- ``for_terminal(text)``: text safe to print: control characters, bidirectional overrides and
  undecodable bytes are shown as escapes (``\\x1b``, ``\\u202e``, ``\\xff``), never obeyed.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 controls, DEL, and the bidirectional controls that can make text read backwards
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def undecodable(text: str) -> int | None:
    """The position of the first undecodable byte in ``text``, or None when it is all text."""
    match = _SURROGATE.search(text)
    return match.start() if match else None


def storable(text: str) -> str:
    """``text`` with each undecodable byte as U+FFFD, so a UTF-8 encoder accepts it."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # the byte Python could not decode
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: object) -> str:
    """``text`` (or ``str(text)``) with everything a terminal would obey shown as an escape."""
    text = str(text)
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text
