"""Class 11: nothing read from a file reaches the terminal raw.

A PNG dropped into the pictures folder with escape sequences in its prompt (clear the screen,
set the window title), a model whose name or folder holds them, or a right-to-left override, and
an argument echoed in an error: what is printed shows them as escapes, and no control byte
(other than the line ends) is written.
"""

from __future__ import annotations

import re

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from desktop_app.cli.main import main
from tests.faults.conftest import edit_json, model_copy, no_traceback, run_cli

HOSTILE = "a red circle\x1b[2J\x1b]0;pwned\x07\u202eevil\x9b31m"
CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80\xae")  # all but \t and \n; C1; RLO


def test_gallery_search_shows_escapes_instead_of_obeying_them(home):
    pictures = home / "pictures"
    pictures.mkdir(parents=True)
    info = PngInfo()
    info.add_text("parameters", f"{HOSTILE}\nSteps: 3, Sampler: Euler, Seed: 1, Size: 8x8")
    Image.new("RGB", (8, 8)).save(pictures / "dropped.png", pnginfo=info)
    result = run_cli(["gallery", "--search", "circle"], home)
    no_traceback(result)
    assert result.returncode == 0
    assert not CONTROL.search(result.stdout), result.stdout
    (line,) = [line for line in result.stdout.decode().splitlines() if "dropped.png" in line]
    assert line.endswith("\ta red circle\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil\\x9b31m")


def test_models_shows_names_and_folders_with_escapes(home):
    models = home / "data" / "models"
    named = model_copy(models / "named")
    edit_json(named / "diffuse_studio.json", lambda data: data.update(name=HOSTILE))
    broken = model_copy(models / "evil\x1b]0;title\x07")
    edit_json(broken / "unet" / "config.json", lambda data: data.update(sample_size="\x1b[2J"))
    result = run_cli(["models"], home)
    no_traceback(result)
    assert not CONTROL.search(result.stdout) and not CONTROL.search(result.stderr), (result.stdout, result.stderr)
    assert "a red circle\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil\\x9b31m" in result.stdout.decode()
    assert "evil\\x1b]0;title\\x07/unet/config.json: field 'sample_size'" in result.stderr.decode()


def test_an_argument_echoed_in_an_error_is_escaped(home):
    result = run_cli(["generate", "--prompt", "a circle", "--classifier-target", "\x1b]0;pwned\x07", "--classifier-scale",
                      "2"], home)
    no_traceback(result)
    assert result.returncode == 2
    assert not CONTROL.search(result.stderr), result.stderr
    assert "the classifier does not know \\x1b]0;pwned\\x07" in result.stderr.decode()


def test_printed_json_values_stay_escaped(home, capsys):
    models = home / "data" / "models"
    folder = model_copy(models / "quoted")
    edit_json(folder / "model_index.json", lambda data: data.update(unet=["\x1b[2J", "x"]))
    assert main(["models"]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "names '\\x1b[2J'" in err
