"""`make run` names the system packages a fresh machine lacks (scripts/check_system.py), before Qt fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check_system.py"


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_this_machine_has_what_the_tests_need():
    assert run("--offscreen").returncode == 0
    assert run("--before-venv").returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the library check is for Linux")
def test_a_missing_qt_library_is_named_with_its_debian_package(tmp_path):
    fake = tmp_path / "ldd"  # the loader's answer on a fresh Debian with no X11 cursor library
    fake.write_text("#!/bin/sh\necho '\tlibxcb-cursor.so.0 => not found'\necho '\tlibc.so.6 => /lib/libc.so.6'\n")
    fake.chmod(0o755)
    result = run(env={**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 1
    assert "sudo apt-get install -y libxcb-cursor0" in result.stderr
    assert "libc" not in result.stderr
