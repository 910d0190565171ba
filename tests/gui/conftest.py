"""Fixtures for the window tests: settings pointing at the tiny model, a window, no thread left behind.

A window gets the scripted fake backend unless the test asks for the real engine (``real=True``):
the fake keeps every promise of the backend protocol at a fraction of the time, so most window
tests are fast, and a handful of end-to-end tests run the real engine on the tiny model.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from desktop_app.core.settings import Settings
from tests.qt_noise import ignore_offscreen_noise


def pytest_collection_modifyitems(items):
    ignore_offscreen_noise(items, Path(__file__).parent)


@pytest.fixture(autouse=True)
def no_bridge_thread_left():
    yield
    from desktop_app.gui.bridge import running_bridges

    left = running_bridges()
    assert not left, f"bridge threads still running after the test: {left}"


def shown(panel) -> SimpleNamespace:
    """The recipe the parameters panel shows, by its flat field names (``shown(panel).steps``)."""
    return SimpleNamespace(**panel.recipe().flat())


@pytest.fixture
def settings(tiny_model: Path) -> Settings:
    return Settings(device="cpu", precision="fp32", extra_model_dirs=[str(tiny_model.parent)], first_run_done=True)


def select_model(window, model_id: str) -> None:
    index = window.panel.model.findData(model_id)
    assert index >= 0, f"model {model_id!r} not listed: {[window.panel.model.itemData(k) for k in range(window.panel.model.count())]}"
    window.panel.model.setCurrentIndex(index)


@pytest.fixture
def make_window(qtbot, home, tiny_model):
    """Build main windows; each one is closed (its bridge and backend stopped) at the end of the test.

    ``backend``: a backend to use (e.g. a scripted ``FakeBackend``); ``real=True``: this machine's
    engine, as the app makes it; otherwise a fake backend offering the tiny model's description.
    """
    from desktop_app.backend.fake import FakeBackend
    from desktop_app.backend.local import LocalBackend
    from desktop_app.backend.local.discovery import inspect_model
    from desktop_app.cli.window import configure
    from desktop_app.gallery.library import Library
    from desktop_app.gallery.store import open_default_store
    from desktop_app.gui.window import MainWindow, run_options

    made = []
    stores = []
    terminals: dict[str, list[str]] = {}

    def record(kind: str):
        return lambda job_id, *rest: terminals.setdefault(job_id, []).append(kind)

    def make(settings: Settings, *, start_engine: bool = True, model: str | None = "tiny", steps: int = 4,
             real: bool = False, backend=None):
        if backend is None:
            backend = (LocalBackend(settings.extra_model_dirs, defaults=run_options(settings)) if real
                       else FakeBackend([inspect_model(tiny_model)]))
        store = open_default_store([settings.output_path])
        stores.append(store)
        configure_backend = configure(backend) if isinstance(backend, LocalBackend) else None
        window = MainWindow(settings, backend, Library(settings.output_path, store), start_engine=start_engine,
                            configure_backend=configure_backend)
        qtbot.addWidget(window)
        made.append(window)
        for kind in ("finished", "failed", "cancelled"):
            getattr(window.bridge, f"job_{kind}").connect(record(kind))
        if model:
            select_model(window, model)
        window.panel.steps.setValue(steps)
        window.show()
        return window

    yield make
    for window in made:
        window.close()
        assert not window.bridge.isRunning()
    for store in stores:
        store.close()
    twice = {job: kinds for job, kinds in terminals.items() if len(kinds) != 1}
    assert not twice, f"jobs with more than one terminal signal: {twice}"
