"""Where the app's log records go: a rotating file in the log folder (tracebacks live there, never
in front of the user)."""

from __future__ import annotations

import logging
import logging.handlers

LOG_NAME = "diffuse-studio.log"


def setup_logging(verbose: bool = False) -> None:
    from desktop_app.core import paths

    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        handler = logging.handlers.RotatingFileHandler(paths.log_dir() / LOG_NAME, maxBytes=2_000_000, backupCount=3,
                                                       encoding="utf-8")
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    root.addHandler(handler)
