"""Fixtures for the window tests: settings pointing at the tiny model, a window, no thread left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.settings import Settings

# The offscreen platform cannot resize native windows to size hints; it says so once per dock.
OFFSCREEN_NOISE = "This plugin does not support propagateSizeHints"


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE))


@pytest.fixture(autouse=True)
def no_engine_thread_left():
    yield
    from desktop_app.gui.engine_thread import running_engine_threads

    left = running_engine_threads()
    assert not left, f"engine threads still running after the test: {left}"


@pytest.fixture
def settings(tiny_model: Path) -> Settings:
    return Settings(device="cpu", precision="fp32", extra_model_dirs=[str(tiny_model.parent)], first_run_done=True)


def select_model(window, model_id: str) -> None:
    index = window.panel.model.findData(model_id)
    assert index >= 0, f"model {model_id!r} not listed: {[window.panel.model.itemData(k) for k in range(window.panel.model.count())]}"
    window.panel.model.setCurrentIndex(index)


@pytest.fixture
def make_window(qtbot, home):
    """Build main windows; each one is closed (engine thread stopped) at the end of the test."""
    from desktop_app.gui.window import MainWindow

    made = []
    terminals: dict[int, list[str]] = {}

    def record(kind: str):
        return lambda job_id, *rest: terminals.setdefault(job_id, []).append(kind)

    def make(settings: Settings, *, start_engine: bool = True, model: str | None = "tiny", steps: int = 4):
        window = MainWindow(settings, start_engine=start_engine)
        qtbot.addWidget(window)
        made.append(window)
        for kind in ("finished", "failed", "cancelled"):
            getattr(window.engine, f"job_{kind}").connect(record(kind))
        if model:
            select_model(window, model)
        window.panel.steps.setValue(steps)
        window.show()
        return window

    yield make
    for window in made:
        window.close()
        assert not window.engine.isRunning()
    twice = {job: kinds for job, kinds in terminals.items() if len(kinds) != 1}
    assert not twice, f"jobs with more than one terminal signal: {twice}"
