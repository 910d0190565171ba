"""Diffuse Studio: make images with latent diffusion models on your own machine."""

__version__ = "0.1.0"

import os as _os

# Compile caches the user pointed somewhere before the app started (torch sets its own default
# into the environment later, so this is the only moment the two can be told apart).
USER_COMPILE_CACHE_VARS = frozenset(v for v in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR") if v in _os.environ)
