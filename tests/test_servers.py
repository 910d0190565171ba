"""``diffuse-studio servers``: the ComfyUI servers the window joins to its queue (real settings
files, the real keyring API on an in-memory backend; the Settings dialog's list: tests/gui/test_settings.py)."""

from __future__ import annotations

import pytest
from keyring.backends import fail

from desktop_app.cli.main import main
from desktop_app.core.paths import settings_file
from desktop_app.core.settings import Settings
from tests.keyrings import MemoryKeyring, using

SERVICE = "diffuse-studio:comfyui"


def test_servers_are_added_listed_and_removed_with_their_tokens_in_the_keyring(capsys):
    with using(MemoryKeyring()) as memory:
        assert main(["servers"]) == 0
        assert "No ComfyUI servers" in capsys.readouterr().out
        assert main(["servers", "add", "gpu-box", "--token", "t0k"]) == 0
        assert main(["servers", "add", "https://proxy.example/comfy/"]) == 0
        capsys.readouterr()
        assert Settings.load().comfyui_servers == ["http://gpu-box:8188", "https://proxy.example/comfy"]
        assert memory.stored == {(SERVICE, "http://gpu-box:8188"): "t0k"}
        assert "t0k" not in settings_file().read_text(encoding="utf-8")  # a token never goes into a file
        assert main(["servers", "list"]) == 0
        assert capsys.readouterr().out.splitlines() == ["http://gpu-box:8188  (token in the keyring)",
                                                         "https://proxy.example/comfy"]
        assert main(["servers", "remove", "gpu-box:8188"]) == 0
        assert Settings.load().comfyui_servers == ["https://proxy.example/comfy"]
        assert memory.stored == {}


@pytest.mark.parametrize(("args", "message"), [
    (["add", "ftp://box"], "error: 'ftp://box': a ComfyUI address starts with http:// or https://"),
    (["add", "box:99999"], "error: 'box:99999': the port must be a number from 1 to 65535"),
    (["remove", "other-box"], "error: http://other-box:8188 is not in the list; diffuse-studio servers list shows the ones there are"),
])
def test_a_bad_address_is_one_line_and_changes_nothing(capsys, args, message):
    assert main(["servers", "add", "gpu-box"]) == 0
    capsys.readouterr()
    assert main(["servers", *args]) == 2
    assert capsys.readouterr().err.splitlines() == [message]
    assert Settings.load().comfyui_servers == ["http://gpu-box:8188"]


def test_without_a_keyring_a_server_with_a_token_is_not_added(capsys):
    with using(fail.Keyring()):
        assert main(["servers", "add", "gpu-box", "--token", "t0k"]) == 2
    err = capsys.readouterr().err
    assert "no keyring service" in err and "--token TOKEN" in err and "Traceback" not in err
    assert Settings.load().comfyui_servers == []
