"""Helpers for the fault-injection tests: damaged copies of real model folders, the real CLI in a
subprocess, images saved the way the app saves them.

Every fault here is made for real (a file rewritten, a second process holding a lock, a signal
sent, a write that fails with ENOSPC); what is asserted is what the user sees: the exit status,
the message, and that every image is still on disk and in the index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.qt_noise import ignore_offscreen_noise

REPO = Path(__file__).resolve().parents[2]
SHAPES = REPO / "models" / "shapes"


def pytest_collection_modifyitems(items):
    ignore_offscreen_noise(items, Path(__file__).parent)


def model_copy(destination: Path, source: Path = SHAPES) -> Path:
    """A copy of a model folder whose JSON files may be damaged; its weights are links to the original's."""
    for item in sorted(source.rglob("*")):
        target = destination / item.relative_to(source)
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif item.suffix in (".safetensors", ".bin"):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(item, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, target)
    return destination


def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    """Rewrite a JSON file with ``change(data)``'s result (or ``data`` changed in place)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    result = change(data)
    path.write_text(json.dumps(data if result is None else result), encoding="utf-8")


def run_cli(args: list[str | bytes], home: Path, *, timeout: float = 60, env: dict[str, str] | None = None,
            script: str | None = None) -> subprocess.CompletedProcess:
    """``diffuse-studio ARGS`` in a subprocess (``script``: Python run first, e.g. to arm a fault)."""
    environment = {**os.environ, "DIFFUSE_STUDIO_HOME": str(home), "PYTHONPATH": str(REPO), **(env or {})}
    # Ctrl+C raises KeyboardInterrupt as in a terminal, also when the tests run with SIGINT ignored (in the background)
    code = ("import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n" + (script or "")
            + "\nfrom desktop_app.cli.main import main\nimport sys\nraise SystemExit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=environment, capture_output=True,
                          timeout=timeout)


def no_traceback(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    return err


def save_images(folder: Path, count: int, *, prompt: str = "a red circle", store=None, dated: bool = False) -> list[Path]:
    """``count`` real PNGs saved the way the app saves every image (through the Library)."""
    from PIL import Image

    from desktop_app.core.events import GeneratedImage
    from desktop_app.core.recipe import Recipe
    from desktop_app.gallery.library import Library

    library = Library(folder, store, dated=dated)
    image = Image.new("RGB", (8, 8), "red")
    return [library.save(GeneratedImage(image, Recipe.of(f"{prompt} {k}", seed=k), 0, None, "", {})).path
            for k in range(count)]


@pytest.fixture
def small_disk(tmp_path):
    """``make(size_kb)``: a real, small file system (tmpfs) to fill up, or a read-only one; skipped
    where none can be mounted (the tests that inject the error at the write run everywhere)."""
    mounted: list[Path] = []

    def make(size_kb: int = 1024, *, read_only: bool = False) -> Path:
        if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("a small file system is mounted as root on Linux; the ENOSPC-injection tests cover the rest")
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        options = f"size={size_kb}k,mode=0777" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small file system here: {done.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill_up(folder: Path, leave: int = 0) -> Path:
    """Fill the file system holding ``folder`` (up to ``leave`` bytes); returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb") as fh:
        chunk = b"\0" * 4096
        try:
            while os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize > leave + 4096:
                fh.write(chunk)
                fh.flush()
        except OSError:
            pass
    return filler


FAKE_BACKEND = """
import desktop_app.cli.commands as _commands
from desktop_app.backend.fake import FakeBackend as _Fake, fake_model as _model
_commands.make_backend = lambda settings, args, options: _Fake([_model("fake")])
"""


@pytest.fixture
def fake_engine(monkeypatch):
    """`generate` on the scripted backend (model id "fake"): the command's own behaviour, in milliseconds."""
    import desktop_app.cli.commands as commands
    from desktop_app.backend.fake import FakeBackend, fake_model

    made = []

    def make(settings, args, options):
        made.append(FakeBackend([fake_model("fake")]))
        return made[-1]

    monkeypatch.setattr(commands, "make_backend", make)
    return made


def listed_models(out: str) -> list[str]:
    """The model ids ``diffuse-studio models`` printed under its "Models" heading."""
    ids, inside = [], False
    for line in out.splitlines():
        if not line.startswith(" "):
            inside = line == "Models"
        elif inside:
            ids.append(line.split()[0])
    return ids
