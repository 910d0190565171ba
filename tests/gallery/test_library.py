"""The library: the one way a picture becomes a file and a row; a model hash that comes later is filled in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from desktop_app.core.events import GeneratedImage
from desktop_app.core.models import ModelInfo
from desktop_app.gallery.library import Library
from desktop_app.gallery.metadata import read_metadata
from desktop_app.gallery.store import GalleryStore, Query

from .conftest import make_request


def _model(tmp_path: Path) -> ModelInfo:
    return ModelInfo(id="m", name="M", path=tmp_path / "m", family="SD 1.x", pipeline_class="StableDiffusionPipeline",
                     native_size=(512, 512), latent_factor=8, latent_channels=4, scheduler_config={})


def test_a_hash_known_after_the_save_is_written_into_the_file_and_the_row(out_dir, tmp_path):
    model = _model(tmp_path)
    with GalleryStore(roots=[out_dir]) as store:
        library = Library(out_dir, store)
        pixels = Image.linear_gradient("L").convert("RGB").resize((32, 32))
        first = library.save(GeneratedImage(pixels, make_request(), 0, model, model_hash=""))
        known = library.save(GeneratedImage(pixels, make_request(seed=9), 0, model, model_hash="fedcba9876"))
        assert read_metadata(first.path).info["model"]["hash"] == ""
        assert library.fill_model_hash(str(model.path), "0123456789") == [first.path]
        meta = read_metadata(first.path)
        assert meta.info["model"]["hash"] == "0123456789" and "Model hash: 0123456789" in meta.parameters
        assert store.record(first.image_id).model_hash == "0123456789"  # the row followed
        with Image.open(first.path) as image:
            assert np.array_equal(np.asarray(image), np.asarray(pixels))  # the same picture, only its text changed
        assert read_metadata(known.path).info["model"]["hash"] == "fedcba9876"  # never rewritten
        assert library.fill_model_hash(str(model.path), "0123456789") == []  # once
        assert len(store.query(Query())) == 2


def test_a_file_the_user_changed_meanwhile_is_left_alone(out_dir, tmp_path):
    model = _model(tmp_path)
    library = Library(out_dir)
    saved = library.save(GeneratedImage(Image.new("RGB", (8, 8)), make_request(), 0, model))
    Image.new("RGB", (8, 8), "red").save(saved.path)  # edited in another program
    assert library.fill_model_hash(str(model.path), "0123456789") == []
    assert read_metadata(saved.path).source == "none"
