"""Fixtures shared by every test: a temporary home folder and a tiny real model.

No test touches the real home folder (DIFFUSE_STUDIO_HOME points into tmp_path), and Qt runs
offscreen. The tiny model is a real StableDiffusionPipeline folder with random weights, built
from configs once per session: nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# deleted gallery images go to the freedesktop trash under $XDG_DATA_HOME: never the user's own
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="diffuse-studio-tests-data-")

REPO = Path(__file__).resolve().parent.parent


class _WarningRecords(logging.Handler):
    """Every log record at WARNING or above, from any thread, since the test began."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_warnings = _WarningRecords()
logging.getLogger().addHandler(_warnings)


def pytest_configure(config):
    config.addinivalue_line("markers", "expect_log(pattern, ...): log records at WARNING or above that this test "
                                       "expects (regular expressions matched against the message); any other fails it")


@pytest.fixture(autouse=True)
def no_unexpected_warnings(request):
    """A log record at WARNING or above fails the test unless the test says it expects it."""
    _warnings.records.clear()
    yield
    patterns = [re.compile(p) for mark in request.node.iter_markers("expect_log") for p in mark.args]
    unexpected = [r for r in _warnings.records if not any(p.search(r.getMessage()) for p in patterns)]
    _warnings.records.clear()
    assert not unexpected, "unexpected log records: " + "; ".join(
        f"{r.levelname} {r.name}: {r.getMessage()}" for r in unexpected)


@pytest.fixture(autouse=True)
def home(tmp_path_factory, monkeypatch) -> Path:
    folder = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("DIFFUSE_STUDIO_HOME", str(folder))
    return folder


@pytest.fixture(autouse=True)
def no_leftover_threads():
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not leftover, f"test left threads running: {leftover}"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny Stable Diffusion folder (64×64, random weights, real CLIP tokenizer files)."""
    from desktop_app.backend.local.architectures import build_sd_folder

    return build_sd_folder(tmp_path_factory.mktemp("models") / "tiny", name="Tiny test model")


@pytest.fixture(scope="session")
def tiny_xl(tmp_path_factory) -> Path:
    """A tiny SDXL folder (two text encoders, size time ids), random weights."""
    from desktop_app.backend.local.architectures import build_sd_folder

    return build_sd_folder(tmp_path_factory.mktemp("xl") / "tiny-xl", arch="tiny-sdxl", name="Tiny XL")


@pytest.fixture
def tiny_copy(tiny_model, tmp_path) -> Path:
    """A private copy of the tiny model that a test may damage."""
    import shutil

    return Path(shutil.copytree(tiny_model, tmp_path / "models" / "tiny-copy"))


@pytest.fixture(scope="session")
def engine():
    from desktop_app.backend.local.engine import Engine

    made = Engine()
    yield made
    made.close()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: skipped, with the reason, where there is none (CI has none)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run on a machine with one: pytest -m gpu)")
    for item in gpu_items:
        item.add_marker(skip)
