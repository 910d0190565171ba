"""A recipe as a ComfyUI API-format graph, and what a server cannot do, said before submission.

One graph makes one picture: CheckpointLoaderSimple → CLIPTextEncode ×2 → EmptyLatentImage →
KSampler → VAEDecode → SaveImage. A batch is one graph per picture, each with its own seed (the
recipe's seed + k), so picture k is the same wherever it runs and a batch can spread over servers.

SaveImage's file name prefix is content-addressed (a hash of the rest of the graph): the same recipe
always names the same file on a server, so an identical prompt answered from the server's cache
points at a file that holds exactly this picture, and a picture finished before the server lost its
history can still be found by name.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from desktop_app.backend.remote.comfyui.capabilities import ServerCapabilities
from desktop_app.backend.remote.comfyui.samplers import COMFY_SAMPLERS, sampler_problems
from desktop_app.core.recipe import Recipe

SAVE_SUBFOLDER = "diffuse-studio"
SAVE_NODE = "7"
SAMPLER_NODE = "5"
NEEDED_CLASSES = ("CheckpointLoaderSimple", "KSampler")


def recipe_problems(recipe: Recipe, caps: ServerCapabilities, server: str) -> list[str]:
    """Why ``server`` cannot make ``recipe`` (empty: it can). Each entry is one sentence for the user."""
    found: list[str] = []
    if recipe.model.id not in caps.checkpoints:
        have = ", ".join(caps.checkpoints[:8]) or "none"
        found.append(f"{server} has no checkpoint {recipe.model.id!r} (it has: {have})")
    if recipe.model.add_ons:
        kinds = ", ".join(sorted({a.kind for a in recipe.model.add_ons}))
        found.append(f"add-ons ({kinds}) are not sent to ComfyUI yet; remove them to run on {server}")
    if recipe.source is not None:
        found.append("image to image and inpainting are not sent to ComfyUI yet; run them on this computer")
    if recipe.hires is not None:
        found.append("a second pass (hires fix) is not sent to ComfyUI yet; run it on this computer")
    if recipe.variation is not None and (recipe.variation.strength > 0 or recipe.variation.resizes):
        found.append("variation seeds are not sent to ComfyUI yet; run them on this computer")
    if recipe.guidance.classifier_on:
        found.append("classifier guidance needs the built-in model's classifier, which ComfyUI does not have; "
                     "set the classifier scale to 0")
    found.extend(sampler_problems(recipe.sampling, set(caps.samplers), set(caps.schedulers), server))
    return found


def build_graph(recipe: Recipe) -> dict[str, Any]:
    """The API graph of one picture; ``recipe`` is resolved (seed, width and height set), batch 1."""
    if recipe.output.seed is None or recipe.output.width is None or recipe.output.height is None:
        raise ValueError("build_graph needs a resolved recipe (seed and size set)")
    choice = COMFY_SAMPLERS[recipe.sampling.scheduler]
    graph: dict[str, Any] = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": recipe.model.id}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": recipe.prompt.text, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": recipe.prompt.negative, "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage",
              "inputs": {"width": recipe.output.width, "height": recipe.output.height, "batch_size": 1}},
        SAMPLER_NODE: {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            "seed": recipe.output.seed, "steps": recipe.sampling.steps, "cfg": float(recipe.guidance.scale),
            "sampler_name": choice.sampler_name, "scheduler": choice.scheduler, "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": [SAMPLER_NODE, 0], "vae": ["1", 2]}},
    }
    digest = hashlib.sha256(json.dumps(graph, sort_keys=True).encode("utf-8")).hexdigest()[:24]
    graph[SAVE_NODE] = {"class_type": "SaveImage",
                        "inputs": {"images": ["6", 0], "filename_prefix": f"{SAVE_SUBFOLDER}/{digest}"}}
    return graph


def expected_file(graph: dict[str, Any]) -> tuple[str, str]:
    """(subfolder, file name) of the first file SaveImage writes for ``graph`` on a server that never
    ran it before (ComfyUI numbers files ``<prefix>_00001_.png`` upwards)."""
    prefix = graph[SAVE_NODE]["inputs"]["filename_prefix"]
    subfolder, _, stem = prefix.rpartition("/")
    return subfolder, f"{stem}_00001_.png"


def graph_steps(graph: dict[str, Any]) -> int:
    return int(graph[SAMPLER_NODE]["inputs"]["steps"])
