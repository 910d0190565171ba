"""Pickled model files (``.ckpt``, ``.pt``, ``.bin``), opened without letting them run code.

Unpickling may call any function a file names, so these files are only ever read with torch's
``weights_only=True`` unpickler, inside a *scoped* ``torch.serialization.safe_globals`` that admits a
few harmless names CompVis / Lightning checkpoints carry (MODELS.md): a stand-in for Lightning's
``ModelCheckpoint`` callback (an empty class: nothing of Lightning is imported or needed), numpy's
scalar constructor and its dtypes. Anything else is refused with a message naming what the file
would have called. ``weights_only=False`` is never used.

A pickle is converted once into a ``.safetensors`` copy in the app's cache (keyed by the file's
real path, size and modification time), and everything after that reads the copy.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from desktop_app.core import paths
from desktop_app.core.models import ModelLoadError

LIGHTNING_CALLBACK = "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"


class LightningCallbackStandIn:
    """Takes the place of a Lightning ``ModelCheckpoint`` found in a checkpoint's ``callbacks``: it
    only receives the attributes the pickle stored, and does nothing."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def allowed_globals() -> list:
    """The (object, pickled name) pairs a pickle may name. numpy's scalar constructor builds a number
    from a dtype and raw bytes; its dtype classes are types."""
    import numpy as np

    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    allowed: list = [
        (LightningCallbackStandIn, LIGHTNING_CALLBACK),
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
    ]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        for name in dir(dtypes):
            value = getattr(dtypes, name)
            if isinstance(value, type) and name.endswith("DType"):
                allowed.append((value, f"numpy.dtypes.{name}"))
    return allowed


_NAMES = {name for item in allowed_globals() for name in ([item[1]] if isinstance(item, tuple) else
                                                         [f"{item.__module__}.{item.__qualname__}"])}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def _pickle_streams(path: Path):
    """The pickle byte streams of a torch file: data.pkl in a zip, else the file itself."""
    import io
    import zipfile

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith("data.pkl"):
                    yield io.BytesIO(archive.read(name))
    else:
        with open(path, "rb") as fh:
            yield io.BytesIO(fh.read(64 * 1024 * 1024))  # the object pickle comes before the raw storages


def scan_globals(path: Path) -> tuple[list[str], bool]:
    """(every global a pickle names, whether the scan reached its end), read opcode by opcode with
    pickletools: nothing is executed. GLOBAL names itself; STACK_GLOBAL takes the last two strings
    pushed (directly or from the memo)."""
    import pickletools

    found: list[str] = []
    try:
        for stream in _pickle_streams(path):
            for _ in range(5):  # torch's legacy format is a few pickles in a row
                if stream.read(1) != b"\x80":
                    break
                stream.seek(-1, 1)
                recent: list[str] = []
                memo: dict = {}
                last_was_string = False
                for op, arg, _pos in pickletools.genops(stream):
                    name, pushed = op.name, False
                    if name in _STRING_OPS:
                        recent.append(arg if isinstance(arg, str) else str(arg))
                        pushed = True
                    elif name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
                        memo[len(memo) if name == "MEMOIZE" else arg] = recent[-1] if last_was_string else None
                        pushed = last_was_string
                    elif name in ("BINGET", "LONG_BINGET", "GET") and isinstance(memo.get(arg), str):
                        recent.append(memo[arg])
                        pushed = True
                    elif name == "GLOBAL":
                        found.append(str(arg).replace(" ", "."))
                    elif name == "STACK_GLOBAL" and len(recent) >= 2:
                        found.append(f"{recent[-2]}.{recent[-1]}")
                    elif name == "STOP":
                        break
                    last_was_string = pushed
    except (ValueError, EOFError, OSError):
        return found, False
    return found, True


def _torch_allowed() -> set[str]:
    try:
        from torch import _weights_only_unpickler as wou

        return set(wou._get_allowed_globals()) | set(wou._get_user_allowed_globals())
    except Exception:  # a private helper: without it only the names we admit count as safe
        return set()


def unsafe_globals(path: Path) -> list[str]:
    """The names a pickle calls that the weights-only unpickler does not admit, read without running
    anything (torch's own scan, else ours for the pickle protocols torch's does not read)."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:
        names, _ = scan_globals(path)
        allowed = _torch_allowed()
        names = [n for n in names if n not in allowed]
    return sorted({n for n in names if n not in _NAMES})


def _refusal(path: Path, error: Exception) -> ModelLoadError:
    names = unsafe_globals(path)
    _, complete = scan_globals(path)
    if names and complete:
        return ModelLoadError(path, f"is a pickle that would run code when opened (it calls {', '.join(names)}); "
                                    "it was not loaded; use a .safetensors version of this file")
    if not complete:
        return ModelLoadError(path, "cannot be read as a PyTorch file (it ends too early); "
                                    "it is truncated or damaged; download it again")
    first = str(error).split("WeightsUnpickler error:")[-1].strip().splitlines()[0][:100]
    return ModelLoadError(path, f"cannot be read safely ({first}); it was not loaded; "
                                "use a .safetensors version of this file")


def safe_load(path: Path | str) -> Any:
    """The object a pickled model file holds, unpickled by the weights-only unpickler."""
    import pickle
    import zipfile

    path = Path(path)
    zipped = zipfile.is_zipfile(path)
    try:
        with torch.serialization.safe_globals(allowed_globals()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipped)
    except pickle.UnpicklingError as exc:
        raise _refusal(path, exc) from None
    except Exception as exc:  # whatever the unpickler met instead of a whole file
        if not scan_globals(path)[1]:
            raise ModelLoadError(path, "cannot be read as a PyTorch file (it ends too early); "
                                       "it is truncated or damaged; download it again") from None
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:80]
        raise ModelLoadError(path, f"cannot be read as a PyTorch file ({first}); "
                                   "it is truncated or damaged; download it again") from None


def tensors_of(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The flat name → tensor dict of a loaded checkpoint (``{"state_dict": …}`` or the dict itself)."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelLoadError(path, f"holds a {type(obj).__name__}, not a dictionary of weights")
    found = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not found:
        raise ModelLoadError(path, "holds no weights")
    return found


def converted_path(path: Path) -> Path:
    """Where the ``.safetensors`` copy of ``path`` lives: the cache, keyed by real path, size, mtime."""
    real = Path(os.path.realpath(path))
    stat = real.stat()
    key = hashlib.sha256(f"{real}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return paths.cache_dir() / "converted" / f"{real.stem}-{key}.safetensors"


def convert_to_safetensors(path: Path | str, target: Path | None = None) -> Path:
    """Write the weights of a pickled file as ``.safetensors`` (once; shared storage is copied apart)."""
    from safetensors.torch import save_file

    path = Path(path)
    target = target or converted_path(path)
    if target.exists():
        return target
    tensors = tensors_of(safe_load(path), path)
    seen: set[tuple[int, int]] = set()
    ready = {}
    for name, tensor in tensors.items():
        spot = (tensor.untyped_storage().data_ptr(), tensor.storage_offset()) if tensor.numel() else (0, id(tensor))
        tensor = tensor.contiguous()
        if spot in seen or tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensor.clone()
        seen.add(spot)
        ready[name] = tensor
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    save_file(ready, str(partial), metadata={"converted_from": path.name})
    partial.replace(target)
    return target


def safetensors_copy(path: Path | str) -> Path:
    """The cached ``.safetensors`` copy of a pickled file, made on first use."""
    path = Path(path)
    from desktop_app.backend.local.checkpoint_facts import format_problem, sniff

    problem = format_problem(path, sniff(path))
    if problem:
        raise problem
    return convert_to_safetensors(path)
