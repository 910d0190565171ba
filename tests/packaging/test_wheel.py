"""A wheel carries resources/ and models/, and desktop_app.paths finds them in a fresh virtual environment."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, desktop_app, desktop_app.core.paths as paths
models = paths.shipped_models_dir()
print(json.dumps({
    "package": desktop_app.__file__,
    "svg": str(paths.resource_path("icons", "diffuse-studio.svg")),
    "png": str(paths.resource_path("icons", "hicolor", "48x48", "apps", "diffuse-studio.png")),
    "models": str(models),
    "model_files": sorted(str(p.relative_to(models)) for p in models.rglob("*") if p.is_file()),
}))
"""


def _source_tree(tmp_path: Path) -> Path:
    """The files a wheel is built from, with a small stand-in for models/ (the real one is large)."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "desktop_app", src / "desktop_app", ignore=ignore)
    shutil.copytree(REPO / "resources", src / "resources", ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    model = src / "models" / "stand-in"
    (model / "unet").mkdir(parents=True)
    (model / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (model / "unet" / "config.json").write_text("{}")
    (model / "unet.ckpt.pt").write_bytes(b"a training checkpoint, not for users")
    return src


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result


def _build_isolation() -> list[str]:
    """Build offline with this environment's setuptools when it can make wheels (70.1+ needs no
    `wheel` package), else let pip fetch the build requirements as usual."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(part) for part in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return []
    able = (major, minor) >= (70, 1) or (major >= 69 and importlib.util.find_spec("wheel") is not None)
    return ["--no-build-isolation"] if able else []


@pytest.mark.slow
def test_resources_and_models_are_found_from_an_installed_wheel(tmp_path):
    src = _source_tree(tmp_path)
    dist = tmp_path / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            *_build_isolation(),
            "-w",
            str(dist),
            str(src),
        ]
    )
    (wheel,) = dist.glob("diffuse_studio-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "desktop_app/_data/resources/icons/diffuse-studio.svg" in names
    assert "desktop_app/_data/models/stand-in/unet/config.json" in names
    assert not any("__pycache__" in name or name.endswith(".pt") for name in names)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ]
    )
    assert (python.parent / ("diffuse-studio.exe" if sys.platform == "win32" else "diffuse-studio")).exists()

    # --no-deps keeps this fast and offline; paths.py needs only platformdirs, lent from here.
    import platformdirs

    lent = tmp_path / "lent"
    shutil.copytree(Path(platformdirs.__file__).parent, lent / "platformdirs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(lent)
    found = json.loads(_run([str(python), "-s", "-c", PROBE], cwd=tmp_path, env=env).stdout)

    installed = Path(found["package"]).parent
    assert installed.is_relative_to(venv), f"imported {installed}, not the installed wheel"
    data = installed / "_data"
    assert Path(found["svg"]) == data / "resources" / "icons" / "diffuse-studio.svg"
    assert Path(found["png"]).is_relative_to(data / "resources")
    assert Path(found["models"]) == data / "models"
    assert found["model_files"] == ["stand-in/model_index.json", "stand-in/unet/config.json"]
