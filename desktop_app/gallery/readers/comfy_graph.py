"""Walking a ComfyUI API graph: links, sampler settings, passes, sizes, loaders. No reading policy here.

Every walk keeps a set of visited nodes and stops after ``MAX_NODES`` hops, so a cyclic, deep or
huge graph cannot hang or overflow the stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SAMPLER_NODES = frozenset({"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"})
LOADER_KEYS = ("ckpt_name", "unet_name")
# node types a plain text-to-image (or image-to-image) chain is made of, or that get their own note
UNDERSTOOD = frozenset(
    {
        *SAMPLER_NODES,
        "CheckpointLoaderSimple",
        "CheckpointLoader",
        "unCLIPCheckpointLoader",
        "UNETLoader",
        "CLIPLoader",
        "DualCLIPLoader",
        "VAELoader",
        "LoraLoader",
        "LoraLoaderModelOnly",
        "CLIPSetLastLayer",
        "CLIPTextEncode",
        "CLIPTextEncodeSDXL",
        "CLIPTextEncodeSDXLRefiner",
        "ConditioningCombine",
        "EmptyLatentImage",
        "EmptySD3LatentImage",
        "EmptyHunyuanLatentVideo",
        "VAEDecode",
        "VAEEncode",
        "LoadImage",
        "SaveImage",
        "PreviewImage",
        "KSamplerSelect",
        "BasicScheduler",
        "KarrasScheduler",
        "ExponentialScheduler",
        "RandomNoise",
        "DisableNoise",
        "CFGGuider",
        "BasicGuider",
        "LatentUpscale",
        "LatentUpscaleBy",
        "LatentComposite",
        "PrimitiveNode",
        "PrimitiveInt",
        "PrimitiveFloat",
        "PrimitiveString",
    }
)
LATENT_INPUTS = ("latent_image", "samples", "samples_to", "latent", "samples1", "destination")
# inputs that carry a model, text or sampler part, not the picture: not followed from an output to a sampler
_NOT_PICTURE = frozenset(
    {
        "model",
        "clip",
        "vae",
        "positive",
        "negative",
        "conditioning",
        "clip_vision",
        "clip_vision_output",
        "control_net",
        "guider",
        "sampler",
        "sigmas",
        "noise",
        "upscale_model",
    }
)
_VALUE_KEYS = ("value", "seed", "noise_seed", "int", "float", "number", "steps", "cfg")
_TEXT_KEYS = ("text", "text_g", "text_l", "string", "value", "prompt")
MAX_NODES = 5000


class _Linked:
    def __repr__(self) -> str:
        return "<set by another node>"


LINKED: Any = _Linked()  # a setting that another node computes; no plain value to read


def link(value: Any) -> tuple[str, int] | None:
    """An input linked to another node: ``[node_id, output_index]``."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    ):
        return str(value[0]), value[1]
    return None


def class_of(graph: dict[str, Any], node_id: str | None) -> str:
    node = graph.get(node_id) if node_id is not None else None
    kind = node.get("class_type") if isinstance(node, dict) else None
    return kind if isinstance(kind, str) else ""


def inputs_of(graph: dict[str, Any], node_id: str | None) -> dict[str, Any]:
    node = graph.get(node_id) if node_id is not None else None
    inputs = node.get("inputs") if isinstance(node, dict) else None
    return inputs if isinstance(inputs, dict) else {}


def linked_id(value: Any) -> str | None:
    found = link(value)
    return found[0] if found else None


def ordered(graph: dict[str, Any]) -> list[str]:
    return sorted(graph, key=lambda k: (0, int(k), "") if k.isdigit() else (1, 0, k))


def value(graph: dict[str, Any], raw: Any) -> Any:
    """A setting's value; one linked to a primitive/seed node is read from that node."""
    source = linked_id(raw)
    if source is None:
        return raw
    inputs = inputs_of(graph, source)
    for key in _VALUE_KEYS:
        found = inputs.get(key)
        if isinstance(found, (int, float)) and not isinstance(found, bool):
            return found
    return LINKED


# ---- one sampler's settings ---------------------------------------------------------------------


@dataclass
class Pass:
    node_id: str
    class_type: str
    positive: Any = None  # the link to the positive conditioning
    negative: Any = None  # None: this sampler takes no negative (BasicGuider)
    seed: Any = None
    steps: Any = None
    cfg: Any = None
    sampler_name: Any = None
    schedule: Any = None
    denoise: Any = 1.0
    add_noise: bool = True
    start_at_step: int = 0
    end_at_step: int | None = None
    model: Any = None
    latent: Any = None
    notes: dict[str, str] = field(default_factory=dict)


def settings(graph: dict[str, Any], node_id: str) -> Pass:
    kind = class_of(graph, node_id)
    inputs = inputs_of(graph, node_id)
    p = Pass(node_id, kind, latent=inputs.get("latent_image"), model=inputs.get("model"))
    if kind in ("KSampler", "KSamplerAdvanced"):
        p.positive, p.negative = inputs.get("positive"), inputs.get("negative")
        p.cfg = value(graph, inputs.get("cfg"))
        p.steps = value(graph, inputs.get("steps"))
        p.sampler_name, p.schedule = inputs.get("sampler_name"), inputs.get("scheduler")
        if kind == "KSampler":
            p.seed, p.denoise = value(graph, inputs.get("seed")), value(graph, inputs.get("denoise", 1.0))
        else:
            p.seed = value(graph, inputs.get("noise_seed"))
            p.add_noise = inputs.get("add_noise", "enable") != "disable"
            start, end = value(graph, inputs.get("start_at_step", 0)), value(graph, inputs.get("end_at_step"))
            p.start_at_step = start if isinstance(start, int) else 0
            p.end_at_step = (
                end if isinstance(end, int) and isinstance(p.steps, int) and end < p.steps else None
            )
        return p
    if kind == "SamplerCustom":
        p.positive, p.negative = inputs.get("positive"), inputs.get("negative")
        p.cfg, p.seed = value(graph, inputs.get("cfg")), value(graph, inputs.get("noise_seed"))
        p.add_noise = inputs.get("add_noise", True) is not False
    else:  # SamplerCustomAdvanced: noise, guider, sampler and sigmas come from their own nodes
        _read_guider(graph, inputs.get("guider"), p)
        noise = linked_id(inputs.get("noise"))
        p.add_noise = class_of(graph, noise) != "DisableNoise"
        p.seed = value(graph, inputs_of(graph, noise).get("noise_seed")) if p.add_noise else None
    p.sampler_name = inputs_of(graph, linked_id(inputs.get("sampler"))).get("sampler_name")
    _read_sigmas(graph, inputs.get("sigmas"), p)
    return p


def _read_guider(graph: dict[str, Any], raw: Any, p: Pass) -> None:
    guider = linked_id(raw)
    inputs = inputs_of(graph, guider)
    p.model = inputs.get("model")
    if "positive" in inputs:
        p.positive, p.negative = inputs.get("positive"), inputs.get("negative")
    else:  # BasicGuider: one conditioning, no negative, no CFG (1)
        p.positive = inputs.get("conditioning", inputs.get("cond1"))
        p.negative = inputs.get("negative")
    cfg = inputs.get("cfg", inputs.get("cfg_conds"))
    p.cfg = (
        value(graph, cfg) if cfg is not None else (1.0 if class_of(graph, guider) == "BasicGuider" else None)
    )


def _read_sigmas(graph: dict[str, Any], raw: Any, p: Pass) -> None:
    node = linked_id(raw)
    for _ in range(20):  # SplitSigmas / FlipSigmas / … in front of the scheduler node
        inputs = inputs_of(graph, node)
        if "sigmas" not in inputs or "steps" in inputs:
            break
        p.notes["sigmas"] = f"changed by {class_of(graph, node)} (node {node}); no control here"
        node = linked_id(inputs.get("sigmas"))
    kind, inputs = class_of(graph, node), inputs_of(graph, node)
    p.steps = value(graph, inputs.get("steps"))
    p.denoise = value(graph, inputs.get("denoise", 1.0))
    if p.model is None:
        p.model = inputs.get("model")
    if kind == "BasicScheduler":
        p.schedule = inputs.get("scheduler")
    elif kind:
        p.schedule = kind.removesuffix("Scheduler").lower() or kind


# ---- text ---------------------------------------------------------------------------------------


def follow_text(graph: dict[str, Any], raw: Any) -> list[str]:
    """The texts that reach a conditioning input, in graph order."""
    texts: list[str] = []
    seen: set[tuple[str, int]] = set()
    todo = [link(raw)]
    while todo and len(seen) < MAX_NODES:
        current = todo.pop()
        if current is None or current in seen or current[0] not in graph:
            continue
        seen.add(current)
        node_id, slot = current
        inputs = inputs_of(graph, node_id)
        for key in _TEXT_KEYS:
            found = inputs.get(key)
            if isinstance(found, str):
                texts.append(found)
                break
            if link(found):
                todo.append(link(found))
                break
        else:
            if (
                "positive" in inputs and "negative" in inputs
            ):  # e.g. ControlNetApplyAdvanced: output 1 is the negative
                todo.append(link(inputs["negative" if slot == 1 else "positive"]))
                continue
            keys = [
                k
                for k in sorted(inputs, reverse=True)
                if "conditioning" in k or k in ("positive", "negative")
            ]
            todo.extend(link(inputs[k]) for k in keys)
    return texts


# ---- passes and outputs -------------------------------------------------------------------------


def upstream(graph: dict[str, Any], starts: list[str], skip: frozenset[str] = frozenset()) -> list[str]:
    """Every node that feeds ``starts`` (themselves included), following all inputs but ``skip``."""
    found: list[str] = []
    seen: set[str] = set()
    todo = list(starts)
    while todo and len(seen) < MAX_NODES:
        node_id = todo.pop(0)
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        found.append(node_id)
        todo.extend(i for k, v in inputs_of(graph, node_id).items() if k not in skip and (i := linked_id(v)))
    return found


def output_nodes(graph: dict[str, Any]) -> list[str]:
    return [
        k
        for k in ordered(graph)
        if linked_id(inputs_of(graph, k).get("images"))
        and any(word in class_of(graph, k) for word in ("Save", "Preview"))
    ]


def nearest_sampler(graph: dict[str, Any], output_id: str) -> str | None:
    for node_id in upstream(graph, [output_id], _NOT_PICTURE):
        if class_of(graph, node_id) in SAMPLER_NODES:
            return node_id
    return None


@dataclass
class Chain:
    passes: list[str]  # first pass first
    source: str | None  # where the first pass's latent came from (EmptyLatentImage, VAEEncode…)
    between: dict[str, list[str]] = field(default_factory=dict)  # pass id -> latent steps before it
    feeding: list[str] = field(
        default_factory=list
    )  # other samplers merged in (LatentComposite samples_from…)
    upstream: list[str] = field(default_factory=list)  # every sampler upstream of the final one


def _primary_latent(inputs: dict[str, Any]) -> str | None:
    for key in LATENT_INPUTS:
        if linked_id(inputs.get(key)):
            return linked_id(inputs[key])
    return None


def pass_chain(graph: dict[str, Any], final: str) -> Chain:
    passes, between, steps = [final], {}, []
    node = linked_id(inputs_of(graph, final).get("latent_image"))
    seen = {final}
    while node is not None and node in graph and node not in seen and len(seen) < MAX_NODES:
        seen.add(node)
        if class_of(graph, node) in SAMPLER_NODES:
            between[passes[0]] = list(reversed(steps))
            passes.insert(0, node)
            steps = []
            node = linked_id(inputs_of(graph, node).get("latent_image"))
            continue
        next_node = _primary_latent(inputs_of(graph, node))
        if next_node is None:
            break
        steps.append(_latent_step(graph, node))
        node = next_node
    if steps:
        between[passes[0]] = list(reversed(steps))  # between the source and the first pass: not passes
    samplers_up = [n for n in upstream(graph, [final], _NOT_PICTURE) if class_of(graph, n) in SAMPLER_NODES]
    feeding = [n for n in samplers_up if n not in passes]
    return Chain(passes, node, between, feeding, samplers_up)


def _latent_step(graph: dict[str, Any], node_id: str) -> str:
    kind, inputs = class_of(graph, node_id), inputs_of(graph, node_id)
    if kind == "LatentUpscale":
        return f"a latent upscale ({inputs.get('upscale_method', '?')})"
    if kind == "LatentUpscaleBy":
        return f"a latent upscale by {inputs.get('scale_by')} ({inputs.get('upscale_method', '?')})"
    return f"{kind} (node {node_id})"


def latent_size(graph: dict[str, Any], node_id: str | None) -> tuple[int, int, int | None] | None:
    """Width, height and batch size of the latent a node gives, when the graph says it."""
    scale = 1.0
    seen: set[str] = set()
    while node_id is not None and node_id in graph and node_id not in seen and len(seen) < MAX_NODES:
        seen.add(node_id)
        kind, inputs = class_of(graph, node_id), inputs_of(graph, node_id)
        width, height = inputs.get("width"), inputs.get("height")
        if (
            (kind.startswith("Empty") or kind == "LatentUpscale")
            and _whole(width)
            and _whole(height)
            and width
            and height
        ):
            batch = inputs.get("batch_size")
            return (
                round(width * scale / 8) * 8,
                round(height * scale / 8) * 8,
                batch if _whole(batch) else None,
            )
        if kind == "LatentUpscaleBy" and isinstance(inputs.get("scale_by"), (int, float)):
            scale *= float(inputs["scale_by"])
        if kind in SAMPLER_NODES:
            node_id = linked_id(inputs.get("latent_image"))
        else:
            node_id = _primary_latent(inputs)
    return None


def _whole(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def choose_final(
    graph: dict[str, Any], samplers: list[str], image_size: tuple[int, int]
) -> tuple[str, str | None, list[str]]:
    """The sampler that made this file, the output node it feeds, and all outputs with a sampler."""
    finals: dict[str, str | None] = {}
    outputs: list[str] = []
    for output in output_nodes(graph):
        sampler = nearest_sampler(graph, output)
        if sampler is not None:
            outputs.append(output)
            finals.setdefault(sampler, output)
    if not finals:  # no output node: the samplers no other sampler builds on
        fed = {n for s in samplers for n in upstream(graph, [s], _NOT_PICTURE) if n != s}
        finals = {s: None for s in samplers if s not in fed} or {samplers[0]: None}
    matching = [s for s in finals if (latent_size(graph, s) or (0, 0, 0))[:2] == tuple(image_size)]
    if len(matching) == 1:
        return matching[0], finals[matching[0]], outputs
    best = max(finals, key=lambda s: len(pass_chain(graph, s).passes))
    return best, finals[best], outputs


# ---- model, text encoder, VAE -------------------------------------------------------------------


def find_loader(graph: dict[str, Any], raw: Any) -> tuple[str | None, list[dict[str, Any]]]:
    """The checkpoint/UNet loader a sampler's model comes from, and the LoRAs on the way."""
    add_ons: list[dict[str, Any]] = []
    node, seen = linked_id(raw), set()
    while node is not None and node in graph and node not in seen and len(seen) < MAX_NODES:
        seen.add(node)
        inputs = inputs_of(graph, node)
        if isinstance(inputs.get("lora_name"), str):
            weight = inputs.get("strength_model", 1.0)
            add_ons.append(
                {
                    "kind": "lora",
                    "name": inputs["lora_name"],
                    "weight": float(weight) if isinstance(weight, (int, float)) else 1.0,
                }
            )
        if any(isinstance(inputs.get(k), str) for k in LOADER_KEYS):
            return node, list(reversed(add_ons))
        node = linked_id(inputs.get("model"))
    return None, list(reversed(add_ons))


def clip_skip(graph: dict[str, Any], positive: Any) -> int | None:
    """CLIPSetLastLayer's ``stop_at_clip_layer`` on the way from the prompt's text node to its CLIP."""
    for node_id in upstream(graph, [linked_id(positive)] if linked_id(positive) else []):
        layer = inputs_of(graph, node_id).get("stop_at_clip_layer")
        if class_of(graph, node_id) == "CLIPSetLastLayer" and _whole(layer) and layer != -1:
            return layer
    return None


def vae_of_output(graph: dict[str, Any], output_id: str | None) -> str | None:
    """The file of a VAELoader that decodes the output's picture."""
    for node_id in upstream(
        graph, [output_id] if output_id else [], frozenset({"model", "clip", "positive", "negative"})
    ):
        name = inputs_of(graph, node_id).get("vae_name")
        if class_of(graph, node_id) == "VAELoader" and isinstance(name, str):
            return name
    return None


def source_image(graph: dict[str, Any], encode_id: str | None) -> str:
    for node_id in upstream(graph, [encode_id] if encode_id else [], frozenset({"vae"})):
        name = inputs_of(graph, node_id).get("image")
        if class_of(graph, node_id) == "LoadImage" and isinstance(name, str):
            return name
    return ""
