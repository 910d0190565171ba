"""The command line: images' paths on stdout, validation messages and a non-zero exit on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def _picture(path: Path, size=(64, 64)) -> Path:
    import numpy as np

    pixels = np.full((size[1], size[0], 3), 220, np.uint8)
    pixels[8:30, 8:30] = (200, 30, 30)
    Image.fromarray(pixels).save(path)
    return path


def test_image_to_image_and_inpainting_from_the_command_line(tiny_model, tmp_path, capsys):
    import numpy as np

    init = _picture(tmp_path / "start.png")
    mask = tmp_path / "mask.png"
    painted = Image.new("L", (64, 64), 0)
    painted.paste(255, (0, 0, 32, 32))
    painted.save(mask)
    out = tmp_path / "out"
    code = main(["generate", "--model", str(tiny_model), "--prompt", "a red circle", "--steps", "4", "--seed", "2",
                 "--init-image", str(init), "--strength", "0.5", "--mask", str(mask), "--mask-blur", "0", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (path,) = [Path(line) for line in captured.out.splitlines()]
    with Image.open(path) as image:
        text = image.text["parameters"]
        result = np.asarray(image.convert("RGB"))
    assert "Denoising strength: 0.5" in text and "Mask blur: 0" in text and "Inpaint area: Whole picture" in text
    assert np.array_equal(result[32:], np.asarray(Image.open(init))[32:])  # outside the mask: the picture itself
    assert len(list((out / ".sources").iterdir())) == 2  # the init picture and the mask, kept


def test_outpaint_and_hires_sizes(tiny_model, tmp_path, capsys):
    init = _picture(tmp_path / "narrow.png", (48, 64))
    code = main(["generate", "--model", str(tiny_model), "--prompt", "x", "--steps", "2", "--init-image", str(init),
                 "--strength", "1", "--outpaint", "16,0,0,0", "--out", str(tmp_path / "a")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert Image.open(captured.out.strip()).size == (64, 64)
    code = main(["generate", "--model", str(tiny_model), "--prompt", "x", "--steps", "2", "--hires-scale", "1.5",
                 "--hires-strength", "0.5", "--variation-seed", "9", "--out", str(tmp_path / "b")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    with Image.open(captured.out.strip()) as image:
        assert image.size == (96, 96)
        assert "Hires upscale: 1.5" in image.text["parameters"] and "Variation seed: 9" in image.text["parameters"]


def test_bad_source_files_are_one_line_each_naming_the_file(tiny_model, tmp_path, capsys):
    junk = tmp_path / "junk.png"
    junk.write_text("not a picture")
    code = main(["generate", "--model", str(tiny_model), "--prompt", "x", "--init-image", str(tmp_path / "gone.png"),
                 "--mask", str(junk), "--out", str(tmp_path)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert lines[0] == f"error: --init-image {tmp_path / 'gone.png'}: no such file"
    assert lines[1].startswith(f"error: --mask {junk}: not an image this app can read") and len(lines) == 2
    code = main(["generate", "--model", str(tiny_model), "--prompt", "x", "--mask", str(junk), "--out", str(tmp_path)])
    assert code == 2 and "a mask needs --init-image" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # argparse's own way out
        main(["generate", "--model", str(tiny_model), "--prompt", "x", "--outpaint", "1,2", "--out", str(tmp_path)])
    assert exited.value.code == 2 and "LEFT,TOP,RIGHT,BOTTOM" in capsys.readouterr().err
