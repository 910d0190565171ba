"""Other apps' model folders: which app a folder belongs to, and where they usually are.

Torch-free and Qt-free, so the window can offer them on the first start: ``candidate_roots`` looks
at a fixed list of usual places (the disk is never crawled) and keeps those ``detect_app`` knows.
Reading what they hold is the local backend's (``backend.local.app_folders``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AppRoot:
    app: str  # "AUTOMATIC1111" | "Forge" | "ComfyUI" | "InvokeAI" | "Hugging Face cache"
    path: Path


# ---- which app is this? ----------------------------------------------------------------------------------


def detect_app(root: Path | str) -> str | None:
    root = Path(root)
    if (root / "webui.py").is_file() and (root / "modules").is_dir():
        return "Forge" if (root / "modules_forge").is_dir() else "AUTOMATIC1111"
    if (root / "main.py").is_file() and (root / "comfy").is_dir():
        return "ComfyUI"
    if (root / "invokeai.yaml").is_file():
        return "InvokeAI"
    if root.name == "hub" and any(root.glob("models--*")):
        return "Hugging Face cache"
    return None


def hf_cache_dir(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    env = os.environ if env is None else env
    home = Path(home) if home else Path.home()
    if env.get("HF_HUB_CACHE"):
        return Path(os.path.expanduser(env["HF_HUB_CACHE"]))
    if env.get("HF_HOME"):
        return Path(os.path.expanduser(env["HF_HOME"])) / "hub"
    return home / ".cache" / "huggingface" / "hub"


def candidate_roots(env: Mapping[str, str] | None = None, home: Path | None = None) -> list[AppRoot]:
    """The usual places of other apps' models that exist on this machine (a fixed list: no crawling)."""
    env = os.environ if env is None else env
    home = Path(home) if home else Path.home()
    places = [home / n for n in ("stable-diffusion-webui", "stable-diffusion-webui-forge", "ComfyUI",
                                 "Documents/ComfyUI", "invokeai")]
    if env.get("INVOKEAI_ROOT"):
        places.insert(0, Path(os.path.expanduser(env["INVOKEAI_ROOT"])))
    places.append(hf_cache_dir(env, home))
    found, seen = [], set()
    for place in places:
        try:
            app = detect_app(place) if place.is_dir() else None
        except OSError:
            continue
        real = os.path.realpath(place)
        if app and real not in seen:
            seen.add(real)
            found.append(AppRoot(app, place))
    return found
