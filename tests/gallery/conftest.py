from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from desktop_app.core.events import GeneratedImage  # noqa: E402
from desktop_app.core.recipe import Recipe  # noqa: E402
from desktop_app.gallery.library import Library  # noqa: E402


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("DIFFUSE_STUDIO_HOME", str(home))
    return home


@pytest.fixture
def out_dir(home: Path) -> Path:
    return home / "pictures"


def make_request(**changes) -> Recipe:
    base = Recipe.of(
        "a red circle on a blue square", negative_prompt="blurry, low quality", model_id="shapes",
        scheduler="DPM++ 2M Karras", steps=25, guidance_scale=6.5, seed=1234, width=32, height=32,
    )
    return base.with_(**changes)


def save_image(image, recipe: Recipe, *, model=None, output_dir: Path, index_in_batch: int = 0, run=None,
               model_hash: str = "", store=None, dated: bool = True) -> Path:
    """One picture saved the way the app saves every picture: through the gallery ``Library``."""
    item = GeneratedImage(image, recipe, index_in_batch, model, model_hash, run or {})
    return Library(output_dir, store, dated=dated).save(item).path


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


@pytest.fixture
def panel(qtbot, saved_images, out_dir):
    """The gallery panel over ``out_dir``'s saved images, once its first scan has reached the grid."""
    from desktop_app.gallery.store import GalleryStore
    from desktop_app.gui.gallery import GalleryPanel

    store = GalleryStore(roots=[out_dir])
    widget = GalleryPanel(store)
    qtbot.addWidget(widget)
    # The scan runs on a worker thread; its result reaches the grid through a queued signal.
    with qtbot.waitSignal(widget.synced, timeout=10_000):
        pass
    yield widget
    widget.shutdown()
    store.close()


def shown(panel) -> list[str]:
    """The paths the panel's grid shows, in its order."""
    from desktop_app.gui.gallery.model import PATH_ROLE

    return [panel.model.index(r).data(PATH_ROLE) for r in range(panel.model.rowCount())]
