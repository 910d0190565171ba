"""ComfyUI's ``prompt`` chunk: the API graph of the run that made the image.

Nodes are keyed by id, each with ``class_type`` and ``inputs``; an input linked to another node is
``[node_id, output_index]``. A graph may sample several times: a hires-fix second pass after a
latent upscale, a refiner finishing the last steps (``KSamplerAdvanced`` start/end steps),
subjects sampled apart and composited, image to image from ``VAEEncode``. Every image a run saves
carries the same graph, so the reading follows one saved output (the one whose size matches the
file, else the one with the most passes) back to its first pass: the recipe is that pass's
prompt, seed, steps, CFG, sampler and size, and every later pass, every other sampler and every
node outside a plain text-to-image chain gets a note saying it has no control here.

ComfyUI's ``denoise`` is the image-to-image strength (it runs the last ``steps`` of a
``steps / denoise`` schedule); on an empty latent it has no equivalent. Graph walks are bounded,
so a cyclic or huge graph is read or reported, never hung on.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from desktop_app.gallery.readers import comfy_graph as g
from desktop_app.gallery.readers.common import (
    NO_CONTROL,
    model_stem,
    note,
    put_float,
    put_int,
    put_scheduler,
    show,
)
from desktop_app.gallery.readers.samplers import from_comfy

if TYPE_CHECKING:
    from desktop_app.gallery.metadata import ImageMetadata


def read_comfyui(chunks: dict[str, str], result: ImageMetadata) -> None:
    graph = json.loads(chunks["prompt"])
    if not isinstance(graph, dict) or not graph or not all(isinstance(v, dict) for v in graph.values()):
        raise ValueError("the prompt chunk is not a ComfyUI node graph")
    graph = {str(k): v for k, v in graph.items()}
    samplers = [k for k in g.ordered(graph) if g.class_of(graph, k) in g.SAMPLER_NODES]
    if not samplers:
        result.errors.append(
            "the ComfyUI graph has no sampler node (KSampler, KSamplerAdvanced, SamplerCustom…)"
        )
        return
    final, output, outputs = g.choose_final(graph, samplers, (result.width, result.height))
    chain = g.pass_chain(graph, final)
    root = g.settings(graph, chain.passes[0])
    _read_root(graph, root, chain, result)
    _read_model(graph, root, output, result)
    _note_passes(graph, root, chain, result)
    _note_others(graph, samplers, chain, final, outputs, result)
    _note_nodes(graph, output or final, result)
    result.source = "comfyui"


def note_workflow_only(chunks: dict[str, str], result: ImageMetadata) -> None:
    """A ``workflow`` chunk without ``prompt``: the UI graph alone is not read."""
    if "prompt" not in chunks:
        result.errors.append(
            "the image carries only ComfyUI's 'workflow' (the editor's graph), not the 'prompt' "
            "graph of the run; its settings were not read"
        )


# ---- the first pass -----------------------------------------------------------------------------


def _read_root(graph: dict[str, Any], root: g.Pass, chain: g.Chain, result: ImageMetadata) -> None:
    request = result.request
    texts = g.follow_text(graph, root.positive)
    request["prompt"] = _joined(texts)
    if len(texts) > 1:
        note(
            result,
            "prompt",
            f"{len(texts)} texts",
            "the prompt joins the texts of several nodes (combined or area "
            "conditioning); how ComfyUI combined them",
        )
    if root.negative is not None:
        request["negative_prompt"] = _joined(g.follow_text(graph, root.negative))
    for target, value in (("seed", root.seed), ("steps", root.steps), ("guidance_scale", root.cfg)):
        if value is g.LINKED:
            result.unknown[target] = f"set by another node that gives no plain value; {NO_CONTROL}"
        elif target == "guidance_scale":
            put_float(result, target, value)
        else:
            put_int(result, target, value)
    if isinstance(root.sampler_name, str):
        put_scheduler(
            result, from_comfy(root.sampler_name, root.schedule if isinstance(root.schedule, str) else "")
        )
    size = g.latent_size(graph, chain.source)
    if size is not None:
        request["width"], request["height"], batch = size
        if batch is not None:
            request["batch_size"] = batch
    _read_denoise(graph, root, chain, result)
    if not root.add_noise:
        result.unknown["add_noise"] = (
            f"disabled in node {root.node_id}: it sampled without new noise; {NO_CONTROL}"
        )
    if root.start_at_step:
        note(result, "start_at_step", root.start_at_step, f"node {root.node_id} skipped the first steps")
    result.unknown.update(root.notes)


def _joined(texts: list[str]) -> str:
    """One text exactly as written; several (combined conditioning) joined with commas."""
    return texts[0] if len(texts) == 1 else ", ".join(t.strip() for t in texts if t.strip())


def _read_model(graph: dict[str, Any], root: g.Pass, output: str | None, result: ImageMetadata) -> None:
    loader, add_ons = g.find_loader(graph, root.model)
    if loader is not None:
        name = g.inputs_of(graph, loader).get("ckpt_name") or g.inputs_of(graph, loader).get("unet_name")
        if isinstance(name, str):
            result.request["model_id"] = model_stem(name)
            result.info["model"] = {"name": name}
    clip_skip = g.clip_skip(graph, root.positive)
    if clip_skip is not None:
        note(
            result,
            "clip_skip",
            f"stop at CLIP layer {clip_skip}",
            "the text encoder's last layers were skipped",
        )
    vae = g.vae_of_output(graph, output)
    if vae:
        add_ons.append({"kind": "vae", "name": vae})
    if add_ons:
        result.info["add_ons"] = add_ons
        loras = [a for a in add_ons if a["kind"] == "lora"]
        if loras:
            shown = ", ".join(f"{model_stem(a['name'])} ({a['weight']:g})" for a in loras)
            note(result, "loras", shown, "LoRAs")
        if vae:
            note(result, "vae", vae, "a separate VAE")


def _read_denoise(graph: dict[str, Any], root: g.Pass, chain: g.Chain, result: ImageMetadata) -> None:
    denoise = root.denoise
    if not isinstance(denoise, (int, float)) or isinstance(denoise, bool) or denoise >= 1.0:
        return
    source_type = g.class_of(graph, chain.source)
    if "VAEEncode" in source_type:
        image = g.source_image(graph, chain.source)
        result.info["source"] = {"image": image, "strength": float(denoise)}
        steps = root.steps if isinstance(root.steps, int) else None
        schedule = (
            f" (ComfyUI ran {steps} steps of a {int(steps / denoise)}-step schedule)"
            if steps and denoise > 0
            else ""
        )
        note(
            result,
            "denoise",
            f"{denoise:g}",
            f"image to image from {image or 'an image'} at strength {denoise:g}"
            f"{schedule}; the source image is not in this file, so only the "
            f"text-to-image settings were read",
        )
    else:
        note(
            result,
            "denoise",
            f"{denoise:g}",
            f"node {root.node_id} denoised only the last {denoise:.0%} of its "
            f"schedule, starting from {source_type or 'a latent'}",
        )


# ---- everything else the graph did --------------------------------------------------------------


def _describe(graph: dict[str, Any], p: g.Pass, root: g.Pass) -> str:
    parts = [f"{show(p.sampler_name)} ({show(p.schedule)})" if p.schedule else show(p.sampler_name)]
    if p.start_at_step or p.end_at_step is not None:
        end = p.end_at_step if p.end_at_step is not None else p.steps
        parts.append(f"steps {p.start_at_step}–{show(end)} of {show(p.steps)}")
    else:
        parts.append(f"{show(p.steps)} steps")
    parts.append(f"CFG {show(p.cfg)}")
    if isinstance(p.denoise, (int, float)) and not isinstance(p.denoise, bool) and p.denoise < 1:
        parts.append(f"denoise {p.denoise:g}")
    if p.add_noise and p.seed not in (None, root.seed):
        parts.append(f"seed {show(p.seed)}")
    loader, _ = g.find_loader(graph, p.model)
    root_loader, _ = g.find_loader(graph, root.model)
    if loader is not None and loader != root_loader:
        name = g.inputs_of(graph, loader).get("ckpt_name") or g.inputs_of(graph, loader).get("unet_name")
        parts.append(f"model {model_stem(str(name))}")
    if g.follow_text(graph, p.positive) != g.follow_text(graph, root.positive):
        parts.append("another prompt")
    return ", ".join(parts)


def _note_passes(graph: dict[str, Any], root: g.Pass, chain: g.Chain, result: ImageMetadata) -> None:
    previous = root
    for k, node_id in enumerate(chain.passes[1:], start=2):
        p = g.settings(graph, node_id)
        between = chain.between.get(node_id, [])
        size = g.latent_size(graph, node_id)
        where = f" at {size[0]}×{size[1]}" if size is not None else ""
        ops = f", after {', '.join(between)}" if between else ""
        if (
            g.class_of(graph, node_id) == "KSamplerAdvanced"
            and not p.add_noise
            and p.start_at_step
            and previous.end_at_step == p.start_at_step
        ):
            why = (
                "it finished the steps node "
                + previous.node_id
                + " left noisy (a sampler switch, e.g. a refiner)"
            )
        else:
            why = "a further pass (e.g. a hires fix); the settings read are the first pass's"
        result.unknown[f"pass {k}"] = (
            f"node {node_id} ({p.class_type}): {_describe(graph, p, root)}{where}{ops}: {why}; {NO_CONTROL}"
        )
        previous = p
    if (
        root.end_at_step is not None
        and isinstance(root.steps, int)
        and root.end_at_step < root.steps
        and len(chain.passes) == 1
    ):
        note(
            result,
            "end_at_step",
            root.end_at_step,
            f"node {root.node_id} stopped before the last of its {root.steps} steps",
        )


def _note_others(
    graph: dict[str, Any],
    samplers: list[str],
    chain: g.Chain,
    final: str,
    outputs: list[str],
    result: ImageMetadata,
) -> None:
    feeding = [s for s in samplers if s in chain.feeding]
    if feeding:
        result.unknown["other samplers"] = (
            f"nodes {', '.join(feeding)}: sampled apart and merged into the picture "
            f"(e.g. LatentComposite); {NO_CONTROL}"
        )
    if len(outputs) > 1:
        result.unknown["outputs"] = (
            f"the graph saves {len(outputs)} images (nodes {', '.join(outputs)}); this reading "
            f"follows the one made by node {final}"
        )
    unrelated = [
        s for s in samplers if s not in chain.passes and s not in feeding and s not in chain.upstream
    ]
    if unrelated and "outputs" not in result.unknown:
        result.unknown["outputs"] = (
            f"nodes {', '.join(unrelated)} sample other images; this reading follows node {final}"
        )


def _note_nodes(graph: dict[str, Any], start: str, result: ImageMetadata) -> None:
    nodes = g.upstream(graph, [start])
    counts = Counter(g.class_of(graph, n) for n in nodes)
    other = {k: v for k, v in counts.items() if k and k not in g.UNDERSTOOD}
    if other:
        listed = ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in sorted(other.items()))
        result.unknown["nodes"] = f"{listed}: nodes outside a plain text-to-image chain; {NO_CONTROL}"
    images = [g.inputs_of(graph, n).get("image") for n in nodes if g.class_of(graph, n) == "LoadImage"]
    images = [i for i in images if isinstance(i, str) and i != result.info.get("source", {}).get("image")]
    if images:
        result.unknown["images"] = (
            f"{', '.join(images)}: images the graph loads (image prompts, control images); {NO_CONTROL}"
        )
