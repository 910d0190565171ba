"""Class 8: every number a user gives is checked for finiteness and range before it is used.

The command line's numbers (NaN and infinity included, and numbers far too big), the gallery's
--limit, the hidden window and bench options, and an export template's format fields: each bad
one gives one message and exit status 2, and nothing runs for minutes or fills the memory.
"""

from __future__ import annotations

import time

import pytest

from desktop_app.cli.main import main
from desktop_app.gallery.export import ExportOptions, export_images
from desktop_app.gallery.filenames import render_template
from tests.faults.conftest import save_images

BAD_GENERATE = {
    ("--classifier-scale", "nan"): "error: classifier_scale: the classifier scale must be a number from 0 to 100, not nan",
    ("--classifier-scale", "inf"): "error: classifier_scale: the classifier scale must be a number from 0 to 100, not inf",
    ("--guidance", "-inf"): "error: scale: the guidance scale must be a number from 0 to 50, not -inf",
    ("--guidance", "nan"): "error: scale: the guidance scale must be a number from 0 to 50, not nan",
    ("--eta", "nan"): "error: eta: η must be between 0 (deterministic DDIM) and 1 (DDPM-like), not nan",
    ("--steps", str(10**30)): f"error: steps: steps must be a whole number from 1 to 1000, not {10**30}",
    ("--width", str(10**30)): f"error: width: width must be from 32 to 256 pixels for Shapes (built-in), not {10**30}",
    ("--width", "63"): "error: width: width must be a multiple of 4 for Shapes (built-in); try 60 or 64",
    ("--height", "-64"): "error: height: height must be from 32 to 256 pixels for Shapes (built-in), not -64",
    ("--batch", "0"): "error: batch_size: batch size must be from 1 to 16, not 0",
    ("--batch", str(2**70)): f"error: batch_size: batch size must be from 1 to 16, not {2**70}",
    ("--seed", "-1"): "error: seed: seed must be from 0 to 4294967295 (with the batch's seed + k), not -1",
    ("--seed", str(2**64)): f"error: seed: seed must be from 0 to 4294967295 (with the batch's seed + k), not {2**64}",
}


@pytest.mark.parametrize("option, value", sorted(BAD_GENERATE))
def test_generate_refuses_every_bad_number(option, value, fake_engine, tmp_path, capsys):
    from desktop_app.backend.local.discovery import inspect_model
    from tests.faults.conftest import SHAPES

    code = main(["generate", "--model", "shapes", "--prompt", "a red circle", f"{option}={value}", "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [BAD_GENERATE[(option, value)]]
    assert not (tmp_path / "o").exists()
    assert inspect_model(SHAPES).name == "Shapes (built-in)"


@pytest.fixture
def fake_engine(monkeypatch):
    """generate's backend: the scripted one, offering the built-in model's real description."""
    import desktop_app.cli.commands as commands
    from desktop_app.backend.fake import FakeBackend
    from desktop_app.backend.local.discovery import inspect_model
    from tests.faults.conftest import SHAPES

    made = []
    monkeypatch.setattr(commands, "make_backend",
                        lambda settings, args, options: made.append(FakeBackend([inspect_model(SHAPES, "shapes")])) or made[-1])
    return made


@pytest.mark.parametrize("value", ["-5", "0", str(10**12), "x"])
def test_gallery_limit_must_be_a_positive_count(value, home, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["gallery", "--search", "circle", "--limit", value])
    assert caught.value.code == 2
    assert "argument --limit: should be" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--steps", str(10**40)], ["--batch", "-3"], ["--at-step", "-1"]])
def test_the_window_hidden_numbers_are_checked_too(args, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--quit-after-show", *args])
    assert caught.value.code == 2
    assert "should be" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--repeats", "0"], ["--gallery-size", "-10"], ["--steps", "nan"], ["--guidance", "inf"],
                                  ["--size", str(10**9)]])
def test_bench_numbers_are_checked(args, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["bench", *args])
    assert caught.value.code == 2


@pytest.mark.parametrize("template", ["{index:200000000}", "{seed:>{seed}}", "{prompt:.999999999}", "{cfg:,.500000f}",
                                      "{steps:0999999999d}"])
def test_export_templates_cannot_ask_for_giant_names(template):
    fields = {"index": 3, "seed": 4294967295, "prompt": "a red circle", "cfg": 7.5, "steps": 20}
    started = time.perf_counter()
    name = render_template(template, fields, ".png")
    assert time.perf_counter() - started < 0.5
    assert len(name.encode()) <= 200 and name.endswith(".png")


def test_an_export_with_a_giant_template_is_quick(home, tmp_path):
    images = save_images(home / "pictures", 2)
    started = time.perf_counter()
    result = export_images(images, ExportOptions(tmp_path / "out", template="{index:200000000}"))
    assert time.perf_counter() - started < 2
    assert sorted(result.files) == ["0.png", "1.png"]


@pytest.mark.parametrize("quality", [0, 101, float("nan")])
def test_export_quality_is_checked(quality, tmp_path):
    with pytest.raises(ValueError, match="quality"):
        export_images([], ExportOptions(tmp_path / "out", format="jpeg", quality=quality))
