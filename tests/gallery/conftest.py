from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from desktop_app.gallery.save import save_image  # noqa: E402


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("DIFFUSE_STUDIO_HOME", str(home))
    return home


@pytest.fixture
def out_dir(home: Path) -> Path:
    return home / "pictures"


def make_request(**changes):
    from desktop_app.engine.request import GenerationRequest  # moving to desktop_app.core.recipe

    base = GenerationRequest(
        prompt="a red circle on a blue square", negative_prompt="blurry, low quality", model_id="shapes",
        scheduler="DPM++ 2M Karras", steps=25, guidance_scale=6.5, seed=1234, width=32, height=32,
    )
    return base.replace(**changes)


def tiny_image(colour: str = "red", size: tuple[int, int] = (32, 32)) -> Image.Image:
    return Image.new("RGB", size, colour)


@pytest.fixture
def saved_images(out_dir: Path) -> list[Path]:
    """Five real PNGs saved by the app, with different prompts, models and schedulers."""
    specs = [
        ("a red circle", "shapes", "DPM++ 2M Karras"),
        ("a blue square", "shapes", "Euler a"),
        ("a green triangle", "other-model", "DDIM"),
        ("a red square", "other-model", "DPM++ 2M Karras"),
        ("a yellow star", "shapes", "Euler a"),
    ]
    return [
        save_image(tiny_image(), make_request(prompt=p, model_id=m, scheduler=s, seed=100 + i), model=None, output_dir=out_dir)
        for i, (p, m, s) in enumerate(specs)
    ]
