"""The one Qt message offscreen tests may log: the offscreen platform cannot resize native windows
to their size hints (docks, dialogs) and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

OFFSCREEN_NOISE = "This plugin does not support propagateSizeHints"


def ignore_offscreen_noise(items: list[pytest.Item], folder: Path) -> None:
    """Let the tests collected below ``folder`` log OFFSCREEN_NOISE (and only that)."""
    for item in items:
        if folder in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE))
