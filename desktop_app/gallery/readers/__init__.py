"""Readers of other tools' metadata, most specific first.

Each entry is ``(chunk, reader)``: the reader runs when the image has that text chunk, gets all
of the image's chunks and an empty ``ImageMetadata`` to fill, and claims the image by setting
``source``. A reader that finds someone else's data under a shared chunk name (``parameters``
holds Fooocus JSON, SwarmUI JSON or A1111 text) returns without claiming; one that finds its own
format garbled raises, and ``metadata.metadata_from_chunks`` reports that and tries the next one.
This app's own JSON comes before these and the A1111 ``parameters`` text after them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from desktop_app.gallery.readers.comfyui import note_workflow_only, read_comfyui
from desktop_app.gallery.readers.fooocus import read_fooocus
from desktop_app.gallery.readers.invokeai import read_dream, read_invokeai, read_sd_metadata
from desktop_app.gallery.readers.novelai import read_novelai
from desktop_app.gallery.readers.swarmui import read_swarmui

if TYPE_CHECKING:
    from desktop_app.gallery.metadata import ImageMetadata

Reader = Callable[[dict[str, str], "ImageMetadata"], None]

FOREIGN_READERS: tuple[tuple[str, Reader], ...] = (
    ("invokeai_metadata", read_invokeai),  # InvokeAI 3+
    ("sd-metadata", read_sd_metadata),  # InvokeAI 2.x JSON (the same images carry Dream too)
    ("Dream", read_dream),  # InvokeAI 1.x/2.x command line
    ("Comment", read_novelai),  # NovelAI (with Description, Software, Source)
    ("parameters", read_swarmui),  # SwarmUI: JSON with sui_image_params
    ("parameters", read_fooocus),  # Fooocus: JSON, fooocus_scheme "fooocus"
    ("prompt", read_comfyui),  # ComfyUI API graph (the workflow chunk beside it is the editor's view)
    ("workflow", note_workflow_only),
)

# how a user knows each source ("Made by")
SOURCE_NAMES = {
    "diffuse-studio": "Diffuse Studio",
    "a1111": "AUTOMATIC1111",
    "comfyui": "ComfyUI",
    "invokeai": "InvokeAI",
    "fooocus": "Fooocus",
    "novelai": "NovelAI",
    "swarmui": "SwarmUI",
    "none": "unknown",
}
