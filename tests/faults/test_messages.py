"""Class 10: every error names the file and what to do, in the words of the front end that shows it.

A bad --out is found before anything is generated; a full disk at the save tells the command
line's user what to type, not where to click; a pickled text-encoder file and weights that do
not fit their config give one plain line, never the libraries' advice (``weights_only=False``,
``ignore_mismatched_sizes=True``, ``trust_remote_code=True``).
"""

from __future__ import annotations

import errno
import json
import os

import pytest

from desktop_app.cli.main import main

ADVICE_FOR_PROGRAMMERS = ("weights_only", "ignore_mismatched_sizes", "trust_remote_code", "=True", "=False", "Settings")


def test_an_out_that_is_a_file_is_refused_before_generating(fake_engine, tmp_path, capsys):
    out = tmp_path / "pictures.png"
    out.write_bytes(b"a file, not a folder")
    assert main(["generate", "--model", "fake", "--prompt", "a red circle", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: the output folder {out} is a file, not a folder; give --out a folder you can write to"]
    assert fake_engine[0].submitted == []  # nothing was generated


def test_the_real_engine_never_starts_for_an_out_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "pictures.png"
    out.write_bytes(b"a file, not a folder")
    assert main(["generate", "--prompt", "a red circle", "--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: the output folder {out} is a file, not a folder; give --out a folder you can write to"]


def test_an_out_below_a_file_is_refused_before_generating(fake_engine, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "pictures"
    assert main(["generate", "--model", "fake", "--prompt", "a red circle", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: the output folder {out} cannot be created (a part of its path is a file); give --out a folder "
        "you can write to"]
    assert fake_engine[0].submitted == []


@pytest.mark.parametrize("below", [False, True])
def test_an_out_on_a_read_only_disk_is_refused_before_generating(below, fake_engine, small_disk, capsys):
    out = small_disk(64, read_only=True)
    out = out / "pictures" if below else out
    assert main(["generate", "--model", "fake", "--prompt", "a red circle", "--out", str(out)]) == 2
    what = "cannot be created" if below else "cannot be written"
    assert capsys.readouterr().err.splitlines() == [
        f"error: the output folder {out} {what} (Read-only file system); give --out a folder you can write to"]
    assert fake_engine[0].submitted == []


def test_a_full_disk_at_the_save_says_what_to_type(fake_engine, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    real_write = os.write

    def full(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(out)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    assert main(["generate", "--model", "fake", "--prompt", "a red circle", "--batch", "2", "--out", str(out)]) == 1
    out_text, err = capsys.readouterr()
    assert out_text == ""
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: the disk holding {out} is full, so the image was not saved; free some space or give --out another "
        "folder"] * 2
    assert not any(word in err for word in ADVICE_FOR_PROGRAMMERS)
    assert list(out.iterdir()) == []  # no partial file


def test_a_device_failure_names_the_option_on_the_command_line(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    code = main(["generate", "--prompt", "a red circle", "--device", "cuda", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[-1].endswith("Choose another with --device (auto, cpu, cuda, mps).")
    assert "Settings" not in err


def test_the_window_says_where_to_choose_a_device(qtbot):
    from desktop_app.backend.fake import FakeBackend, fake_model
    from desktop_app.core.settings import Settings
    from desktop_app.gallery.library import Library
    from desktop_app.gui.window import MainWindow

    settings = Settings(first_run_done=True)
    backend = FakeBackend([fake_model("fake")], fail="The GPU is gone.", fail_kind="device")
    window = MainWindow(settings, backend, Library(settings.output_path))
    qtbot.addWidget(window)
    try:
        window.show()
        window.panel.prompt.setPlainText("a red circle")
        with qtbot.waitSignal(window.bridge.job_failed, timeout=5000):
            window.generate_button.click()
        assert window.messages.messages("error")[-1].endswith("The GPU is gone. Choose another device in Settings.")
    finally:
        window.close()


def _pickled_text_encoder(folder):
    import numpy as np
    import torch
    from safetensors.torch import load_file

    encoder = folder / "text_encoder"
    state = load_file(str(encoder / "model.safetensors"))
    state["extra"] = np.zeros(3)  # a pickle that runs no code, but needs a global the safe loader refuses
    torch.save(state, encoder / "pytorch_model.bin")
    (encoder / "model.safetensors").unlink()
    return encoder / "pytorch_model.bin"


def test_a_pickled_text_encoder_gives_one_plain_line(tiny_copy, tmp_path, capsys):
    weights = _pickled_text_encoder(tiny_copy)
    code = main(["generate", "--model", str(tiny_copy), "--prompt", "a red circle", "--steps", "1",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: The model could not be used: {weights}: this pickled weights file holds more than "
                           "plain tensors (numpy")
    assert line.endswith("so it is not loaded: loading it could run code. Convert it to .safetensors, or get the "
                         "model in that format")
    assert not any(word in err for word in ADVICE_FOR_PROGRAMMERS)


def test_weights_that_do_not_fit_their_config_give_one_plain_line(tiny_copy, tmp_path, capsys):
    config = tiny_copy / "unet" / "config.json"
    data = json.loads(config.read_text())
    data["block_out_channels"] = [2 * c for c in data["block_out_channels"]]
    config.write_text(json.dumps(data))
    code = main(["generate", "--model", str(tiny_copy), "--prompt", "a red circle", "--steps", "1",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: The model could not be used: {tiny_copy / 'unet'}: its weights do not fit its "
                           "config.json (conv_in.")
    assert line.endswith("the folder mixes parts of different models. Copy the model again")
    assert not any(word in err for word in ADVICE_FOR_PROGRAMMERS)


@pytest.mark.parametrize("text, kept", [
    ("Cannot load x. Pass `trust_remote_code=True` to allow it.", "Cannot load x."),
    ("Error(s) in loading. You may consider adding ignore_mismatched_sizes=True in the model.", "Error(s) in loading."),
    ("\x1b[1mBold\x1b[0m advice. Plain reason.", "Plain reason."),
])
def test_library_text_loses_its_advice_for_programmers(text, kept):
    from desktop_app.backend.local.load_errors import plain

    assert plain(text) == kept
