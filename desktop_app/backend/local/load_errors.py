"""What went wrong loading a model folder, said for the user: which file, and what to do.

diffusers, transformers and torch explain their errors to programmers: "pass
``ignore_mismatched_sizes=True``", "load with ``trust_remote_code=True``", "re-run ``torch.load``
with ``weights_only=False``". That advice must never reach a user verbatim (following the last
one runs whatever code a pickle holds). ``load_failure`` turns such an exception into a
``ModelLoadError`` naming the file at fault (found in the traceback) with one plain sentence; any
other library text keeps only its sentences without code in them.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

from desktop_app.core.models import ModelLoadError

_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".safetensors")
_CODE = re.compile(r"`[^`]*`|\b\w+=(True|False|None)\b|https?://\S+|torch\.\w+|\x1b\[[0-9;]*m")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_SHAPES = re.compile(r"(\S+) expected shape torch\.Size\((\[[^\]]*\])\), but got torch\.Size\((\[[^\]]*\])\)")


def plain(text: str, limit: int = 300) -> str:
    """The sentences of a library's message that hold no code, no option to pass, no link."""
    text = " ".join(str(text).split())
    kept = [s for s in _SENTENCE.split(text) if s and not _CODE.search(s)]
    result = " ".join(kept) if kept else _CODE.sub("…", text)
    return result if len(result) <= limit else result[: limit - 1].rstrip() + "…"


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def culprit(exc: BaseException, folder: Path) -> Path:
    """The file (else the component folder) inside ``folder`` that the failing code was reading,
    from the traceback's local variables; ``folder`` itself when none is found."""
    folder = Path(folder).resolve()
    component = None
    for error in _chain(exc):
        frames = []
        tb = error.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        for frame in reversed(frames):  # innermost first: the most specific file
            for value in list(frame.f_locals.values()):
                if not isinstance(value, (str, Path)) or not str(value):
                    continue
                candidate = Path(value)
                try:
                    resolved = candidate.resolve() if candidate.is_absolute() else (folder / candidate).resolve()
                except (OSError, ValueError):
                    continue
                if folder not in resolved.parents:
                    continue
                if resolved.is_file() and resolved.suffix in _WEIGHT_SUFFIXES:
                    return resolved
                if component is None and resolved.is_dir() and resolved.parent == folder:
                    component = resolved
    return component or folder


def _weights_in(component: Path) -> Path:
    """A pickled weights file in ``component`` (the one the loader read, when the traceback lost it)."""
    for suffix in (".bin", ".pt", ".pth", ".ckpt"):
        found = sorted(component.glob(f"*{suffix}")) if component.is_dir() else []
        if found:
            return found[0]
    return component


def load_failure(exc: BaseException, folder: Path) -> ModelLoadError:
    """The user's error for a model folder that diffusers or transformers could not load."""
    text = " ".join(str(e) for e in _chain(exc))
    where = culprit(exc, folder)
    if any(isinstance(e, pickle.UnpicklingError) for e in _chain(exc)) or "Weights only load failed" in text:
        found = _GLOBAL.search(text)
        needs = f" ({found.group(1)})" if found else ""
        return ModelLoadError(_weights_in(where), f"this pickled weights file holds more than plain tensors{needs}, so "
                                                  "it is not loaded: loading it could run code. Convert it to "
                                                  ".safetensors, or get the model in that format")
    if "ignore_mismatched_sizes" in text or "size mismatch" in text:
        shapes = _SHAPES.search(text)
        detail = f" ({shapes.group(1)} is {shapes.group(3)} in the weights, {shapes.group(2)} in config.json)" if shapes else ""
        return ModelLoadError(where, f"its weights do not fit its config.json{detail}: the folder mixes parts of "
                                     "different models. Copy the model again")
    if "trust_remote_code" in text:
        return ModelLoadError(where, "it needs code that is not part of diffusers or transformers; Diffuse Studio "
                                     "runs no code from a model folder")
    return ModelLoadError(where, f"could not be loaded: {plain(text)}")
