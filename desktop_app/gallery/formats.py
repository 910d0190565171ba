"""The names and versions of what the gallery writes, in one leaf module every other one may import."""

from desktop_app.core.files import TEMP_PREFIX  # unfinished saves; never indexed, removed by the next scan

__all__ = ["COMFYUI_PROMPT_KEY", "DELETED_PREFIX", "FORMAT_VERSION", "IMAGE_SUFFIXES", "JSON_KEY", "PARAMETERS_KEY",
           "TEMP_PREFIX"]

JSON_KEY = "diffuse_studio"  # PNG text chunk with this app's exact recipe (JSON)
PARAMETERS_KEY = "parameters"  # PNG text chunk in AUTOMATIC1111's format
COMFYUI_PROMPT_KEY = "prompt"  # ComfyUI's API graph, for images made on a ComfyUI server
FORMAT_VERSION = 2  # of the JSON chunk: 1 held a flat "request"; 2 holds the recipe in parts and the run apart
DELETED_PREFIX = ".deleted-"  # deleted images kept for undo
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
