"""Backends that run jobs on other machines. ``comfyui``: one or several ComfyUI servers.

Nothing here imports torch, diffusers, PySide6 or ``desktop_app.backend.local``: a laptop with no GPU
runs the window and sends the work elsewhere.
"""
