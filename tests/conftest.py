"""Root fixtures: a temporary home folder for every test, offscreen Qt, one tiny model a session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every app folder (config, data, cache, logs, pictures) below a temporary directory."""
    home = tmp_path / "home"
    monkeypatch.setenv("DIFFUSE_STUDIO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Stable Diffusion folder with random weights (64×64), built once per session.

    Its parent folder holds only this model, so it can be added as an extra model folder.
    """
    from desktop_app.engine.architectures import build_sd_folder

    return build_sd_folder(tmp_path_factory.mktemp("models") / "tiny", name="Tiny test model")
