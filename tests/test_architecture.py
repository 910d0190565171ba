"""The layers of DESIGN.md, kept by import-linter contracts; importing the entry point loads neither torch nor Qt."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed (pip install -e '.[test]')"
    done = subprocess.run([lint, str(REPO / "pyproject.toml")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 5 kept, 0 broken." in done.stdout, done.stdout


def test_engine_import_does_not_load_torch():
    code = ("import sys, desktop_app.core.recipe, desktop_app.backend.local, desktop_app.cli.main; "
            "desktop_app.cli.main.build_parser(); print('torch' in sys.modules, 'PySide6' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_the_code_passes_ruff():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, "ruff is not installed (pip install -e '.[test]')"
    done = subprocess.run([ruff, "check", "desktop_app", "tests", "packaging"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
