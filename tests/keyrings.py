"""A keyring backend that keeps passwords in memory: the real ``keyring`` API, no system service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from keyring.backend import KeyringBackend


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):  # type: ignore[no-untyped-def]
        return self.stored.get((service, username))

    def set_password(self, service, username, password):  # type: ignore[no-untyped-def]
        self.stored[(service, username)] = password

    def delete_password(self, service, username):  # type: ignore[no-untyped-def]
        self.stored.pop((service, username), None)


@contextmanager
def using(backend: KeyringBackend) -> Iterator[KeyringBackend]:
    """``backend`` as the process's keyring while inside."""
    import keyring

    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
