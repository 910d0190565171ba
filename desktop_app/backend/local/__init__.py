"""The local backend: runs the engine on this machine (the only package importing torch/diffusers)."""
