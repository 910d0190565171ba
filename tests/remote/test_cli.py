"""``diffuse-studio generate --server URL``: a job on a ComfyUI server, saved with its recipe and graph."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from desktop_app.cli.main import main
from desktop_app.gallery.metadata import read_metadata

from .conftest import MODEL


def test_generate_on_a_server_saves_the_picture_with_its_recipe_and_the_graph(make_fake, tmp_path, capsys):
    fake = make_fake()
    out = tmp_path / "out"
    code = main(["generate", "--server", fake.url, "--model", MODEL, "--prompt", "a red circle", "--scheduler", "Euler",
                 "--steps", "4", "--seed", "511", "--width", "64", "--height", "64", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (path,) = [Path(line) for line in captured.out.splitlines()]
    assert path.parent == out and path.name.endswith("a_red_circle.png")  # our own name, never the server's
    meta = read_metadata(path)
    assert meta.source == "diffuse-studio" and meta.recipe().model.id == MODEL and meta.recipe().output.seed == 511
    assert meta.info["run"]["server"]
    graph = json.loads(Image.open(path).info["prompt"])  # ComfyUI itself can load the image again
    assert {n["class_type"] for n in graph.values()} >= {"CheckpointLoaderSimple", "KSampler", "SaveImage"}


def test_a_server_that_is_not_there_is_one_clear_line(tmp_path, capsys):
    code = main(["generate", "--server", "http://127.0.0.1:9", "--prompt", "x", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: cannot connect to") and "Traceback" not in err


def test_a_model_the_server_does_not_have_is_refused_before_anything_runs(make_fake, tmp_path, capsys):
    fake = make_fake()
    code = main(["generate", "--server", fake.url, "--model", "not-there.safetensors", "--prompt", "x", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "not-there.safetensors" in err and MODEL in err  # names what it does have
    assert not list(tmp_path.iterdir())
