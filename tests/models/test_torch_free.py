"""The parts discovery and the window use must not import torch (a fresh interpreter proves it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

TORCH_FREE = ["desktop_app.core.prompt_syntax", "desktop_app.backend.local.checkpoint_facts",
              "desktop_app.backend.local.add_on_facts", "desktop_app.backend.local.app_folders",
              "desktop_app.backend.local.hashes", "desktop_app.backend.local.ldm_layout"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module):
    code = f"import sys, {module}; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
