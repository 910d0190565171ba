"""The engine on this machine: the only package that imports torch and diffusers (lazily, on the
backend's worker thread). ``LocalBackend`` is its face to the rest of the app."""

from desktop_app.backend.local.backend import LocalBackend

__all__ = ["LocalBackend"]
