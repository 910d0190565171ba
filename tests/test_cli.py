"""The command line: images' paths on stdout, validation messages and a non-zero exit on bad input."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from desktop_app.cli.main import main


def test_generate_writes_pngs_and_prints_their_paths(tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["generate", "--model", str(tiny_model), "--prompt", "a red circle", "--steps", "3",
                 "--seed", "5", "--batch", "2", "--scheduler", "Euler", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    paths = [Path(line) for line in captured.out.splitlines()]
    assert len(paths) == 2
    for path in paths:
        assert path.is_file() and path.parent == out  # --out is where the files go, no date subfolder
        with Image.open(path) as image:
            assert image.size == (64, 64)
            assert "Seed: 5" in image.text["parameters"] or "Seed: 6" in image.text["parameters"]
    assert "3/3" in captured.err  # the progress bar goes to stderr


def test_bad_arguments_exit_non_zero_with_every_message(tiny_model, tmp_path, capsys):
    code = main(["generate", "--model", str(tiny_model), "--prompt", "x", "--steps", "0", "--width", "63",
                 "--eta", "3", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "steps:" in err and "width:" in err and "η must be between 0" in err
    assert not any(tmp_path.rglob("*.png"))


def test_unknown_model_is_a_clear_error(tmp_path, capsys):
    code = main(["generate", "--model", "no-such-model", "--prompt", "x", "--out", str(tmp_path)])
    assert code == 2
    assert "no model with this id or path" in capsys.readouterr().err


def test_models_and_schedulers_list(home, tiny_model, capsys):
    import shutil

    shutil.copytree(tiny_model, home / "data" / "models" / "tiny")
    assert main(["models"]) == 0
    assert "Tiny test model" in capsys.readouterr().out
    assert main(["schedulers"]) == 0
    out = capsys.readouterr().out
    for name in ("DPM++ 2M Karras", "Euler a", "UniPC", "LCM"):
        assert name in out


def test_memory_and_speed_options_reach_the_engine(tiny_model, tmp_path, capsys):
    code = main(["generate", "--model", str(tiny_model), "--prompt", "a red circle", "--steps", "2", "--seed", "1",
                 "--width", "96", "--height", "96", "--vae-tiling", "on", "--fast", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "decoded in tiles" in err  # 96 px is over the tiny VAE's 64 px tile
    assert "--fast applies on a CUDA GPU only" in err  # and the CPU run said so instead of compiling
