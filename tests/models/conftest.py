"""Fixtures for the bring-your-own-models tests: a socket guard, and tiny models built once per session.

Every model file is made here from the tiny architectures (``fixtures``); nothing is downloaded, and
the guard fails any test that tries to open a network connection.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from . import fixtures as fx


class NetworkUsed(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail on any attempt to reach another machine (local Unix sockets stay allowed)."""

    def refuse(self, address, *args, **kwargs):
        if self.family == getattr(socket, "AF_UNIX", None):
            return original_connect(self, address, *args, **kwargs)
        raise NetworkUsed(f"a model test tried to connect to {address!r}")

    def refuse_create(address, *args, **kwargs):
        raise NetworkUsed(f"a model test tried to connect to {address!r}")

    original_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse_create)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the loader must force offline mode itself


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("byo-models")


class Models:
    """Tiny folders and single files, each built on first use and shared by the session."""

    def __init__(self, root: Path):
        self.root = root
        self._folders: dict[tuple, Path] = {}
        self._files: dict[tuple, Path] = {}
        self._pipes: dict[str, object] = {}  # one file per name: options differ, names differ

    def folder(self, arch: str, **unet) -> Path:
        key = (arch, tuple(sorted(unet.items())))
        if key not in self._folders:
            name = arch + "".join(f"-{k}{v}" for k, v in sorted(unet.items()))
            self._folders[key] = fx.build_folder(arch, self.root / "folders" / name, unet=unet or None)
        return self._folders[key]

    def pipeline(self, arch: str):
        """The folder model of ``arch`` as its diffusers pipeline (shared: tests must not change it)."""
        if arch not in self._pipes:
            import json

            import diffusers

            folder = self.folder(arch)
            name = json.loads((folder / "model_index.json").read_text())["_class_name"]
            pipe = getattr(diffusers, name).from_pretrained(folder, local_files_only=True)
            pipe.set_progress_bar_config(disable=True)
            self._pipes[arch] = pipe
        return self._pipes[arch]

    def single_file(self, arch: str, name: str | None = None, *, unet: dict | None = None, **options) -> Path:
        key = (arch, name or arch, repr(sorted((unet or {}).items())), repr(sorted(options.items())))
        if key not in self._files:
            folder = self.folder(arch, **(unet or {}))
            path = self.root / "files" / f"{name or arch}.safetensors"
            self._files[key] = fx.write_single_file(folder, fx.arch_family(arch), path, **options)
        return self._files[key]


@pytest.fixture(scope="session")
def models(model_root) -> Models:
    return Models(model_root)
