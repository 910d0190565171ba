"""What the command line prints: everything that came from a file or an argument is made safe first.

A prompt in an image's metadata, a model's name, a file name or a JSON value quoted in an error
may hold escape sequences (clear the screen, set the window title) or bytes that are not UTF-8
(which make ``print`` raise). Every line goes out through here: ``say`` to stdout, ``tell`` and
``error`` to stderr, each with control characters shown as escapes (``core.text.for_terminal``).
``path`` prints a file's path for scripts: its exact bytes, with control characters escaped.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from desktop_app.core.text import for_terminal

_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")


def _write(stream, text: str, end: str = "\n", start: str = "") -> None:
    stream.write(start + for_terminal(text) + end)
    stream.flush()


def say(*parts: object, sep: str = " ") -> None:
    """One line of results on stdout (``sep`` between the parts is written as it is, e.g. a tab)."""
    sys.stdout.write(sep.join(for_terminal(part) for part in parts) + "\n")
    sys.stdout.flush()


def tell(text: object, *, start: str = "") -> None:
    """A line of progress or a note on stderr (``start="\\n"`` ends a progress bar's line first)."""
    _write(sys.stderr, str(text), start=start)


def error(text: object) -> None:
    tell(f"error: {text}")


def path(value: Path | str) -> None:
    """A path on stdout as the file system spells it (a name that is not UTF-8 stays usable)."""
    raw = _CONTROL_BYTES.sub(lambda m: b"\\x%02x" % m.group()[0], os.fsencode(str(value)))
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a stream without bytes (rare): the escaped text instead
        _write(sys.stdout, os.fsdecode(raw))
        return
    buffer.write(raw + b"\n")
    buffer.flush()
