"""Access tokens for servers behind a proxy, kept in the system keyring, never in the settings file.

With no ``keyring`` package, or no keyring service behind it (a headless Linux box has none),
``save_token`` raises ``TokenStoreUnavailable`` saying which is missing: the caller tells the user
(and may keep the token for the session); nothing falls back to a plain-text file.
"""

from __future__ import annotations

from desktop_app.backend.remote.comfyui.client import normalize_url

SERVICE = "diffuse-studio:comfyui"


class TokenStoreUnavailable(RuntimeError):
    pass


def _keyring():  # type: ignore[no-untyped-def]
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        raise TokenStoreUnavailable("the keyring package is not installed (pip install keyring)") from None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
        raise TokenStoreUnavailable("this system has no keyring service (e.g. GNOME Keyring, KWallet, macOS "
                                    "Keychain, Windows Credential Manager)")
    return keyring


def keyring_available() -> bool:
    try:
        _keyring()
        return True
    except TokenStoreUnavailable:
        return False


def save_token(url: str, token: str) -> None:
    _keyring().set_password(SERVICE, normalize_url(url), token)


def load_token(url: str) -> str | None:
    try:
        return _keyring().get_password(SERVICE, normalize_url(url))
    except TokenStoreUnavailable:
        return None


def delete_token(url: str) -> None:
    import keyring.errors

    try:
        _keyring().delete_password(SERVICE, normalize_url(url))
    except keyring.errors.PasswordDeleteError:
        pass
