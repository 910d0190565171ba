"""What a model file is, from its first bytes and its safetensors header: no torch, no weights read.

Discovery calls this for every file it lists (a header is a few hundred kB of JSON at most), so the
window can show kind and family at once; the loader calls it again before it loads.

- ``read_header`` reads a ``.safetensors`` header, and names the file when it is truncated, is a web
  page saved under a model's name, a Git LFS pointer, or not a safetensors file at all;
- ``identify`` says what role a file plays: a checkpoint, a LoRA, a VAE, an embedding, or something
  the app names but cannot use (FLUX, SD3, …);
- ``checkpoint_facts`` tells a checkpoint's family (SD 1.x / 2.x / SDXL), its kind (txt2img, inpaint,
  instruct-pix2pix, refiner) and what MODELS.md says the rest of the app needs to know (its VAE, its
  prediction type when the file says it).

Family rules (MODELS.md): the UNet lives under ``model.diffusion_model.``; its first convolution's
input channels give the kind (4 plain, 9 inpainting, 8 instruct-pix2pix); the text encoders give
the family (SD 1.x: ``cond_stage_model.transformer.*``, SD 2.x: ``cond_stage_model.model.*``, SDXL
base: ``conditioner.embedders.1.model.*``, SDXL refiner: only ``conditioner.embedders.0.model.*``),
and the UNet's cross-attention width must equal the width of what feeds it (768 SD 1.x, 1024 SD 2.x,
768 + 1280 = 2048 SDXL, 1280 refiner), a cross-check that holds for the tiny test models too.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app.core.model_choices import remember_prediction, remembered_prediction  # noqa: F401 (re-exported)
from desktop_app.core.models import ModelLoadError

UNET = "model.diffusion_model."
MAX_HEADER = 100 * 1024 * 1024
KINDS_BY_IN_CHANNELS = {4: "txt2img", 9: "inpaint", 8: "instruct-pix2pix"}
FAMILY_BY_CROSS_WIDTH = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL", 1280: "SDXL"}
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")

# Keys that name architectures the app does not run (diffusers' own detection keys, with and without
# the LDM prefix), checked in this order.
UNSUPPORTED = (
    ("FLUX", ("double_blocks.0.img_attn.norm.key_norm.scale",)),
    ("Stable Diffusion 3", ("joint_blocks.0.context_block.adaLN_modulation.1.bias",)),
    ("Stable Cascade", ("clip_txt_mapper.weight", "down_blocks.1.0.channelwise.0.weight")),
    ("AuraFlow", ("double_layers.0.attn.w2q.weight",)),
    ("PixArt / Sana", ("blocks.0.cross_attn.q_linear.weight",)),
    ("Playground v2.5 (EDM)", ("edm_mean",)),
    ("a ControlNet", ("control_model.time_embed.0.weight", "controlnet_cond_embedding.conv_in.weight")),
)
PIPELINES = {
    ("SD", "txt2img"): "StableDiffusionPipeline",
    ("SD", "inpaint"): "StableDiffusionInpaintPipeline",
    ("SD", "instruct-pix2pix"): "StableDiffusionInstructPix2PixPipeline",
    ("SDXL", "txt2img"): "StableDiffusionXLPipeline",
    ("SDXL", "inpaint"): "StableDiffusionXLInpaintPipeline",
    ("SDXL", "instruct-pix2pix"): "StableDiffusionXLInstructPix2PixPipeline",
    ("SDXL", "refiner"): "StableDiffusionXLImg2ImgPipeline",
}
# The shipped real-size architecture of each layout, and the picture size each family was trained at
# (SD 2.x: the v-prediction releases at 768, the ε ones at 512).
DEFAULT_ARCHITECTURE = {"SD 1.x": "sd15", "SD 2.x": "sd2", "SDXL": "sdxl", "SDXL refiner": "sdxl-refiner"}
NATIVE_SIZE = {"SD 1.x": 512, "SDXL": 1024}
SUPPORTED_TEXT = "Diffuse Studio runs Stable Diffusion 1.x, 2.x and SDXL checkpoints"


@dataclass(frozen=True)
class Header:
    path: Path
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    metadata: dict[str, str]
    data_start: int  # where the tensor bytes begin (8 + header length): the LoRA hash starts here

    def has(self, key: str) -> bool:
        return key in self.shapes

    def any_with(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self.shapes)


def sniff(path: Path) -> str:
    """The format of a file from its first bytes: "safetensors", "pickle-zip" (torch.save since 1.6),
    "pickle" (older torch.save), "html", "lfs-pointer", "empty" or "unknown"."""
    with Path(path).open("rb") as fh:
        head = fh.read(512)
    if not head:
        return "empty"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        return "html"
    if head.startswith(b"version ") and b"git-lfs" in head:
        return "lfs-pointer"
    if len(head) >= 9 and head[8:9] == b"{":  # first: the 8 length bytes before it can be anything
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return "pickle-zip"
    if head[:1] == b"\x80":  # a pickle's protocol mark (torch's legacy format starts with one too)
        return "pickle"
    return "unknown"


def format_problem(path: Path, kind: str) -> ModelLoadError | None:
    if kind == "html":
        return ModelLoadError(path, "is a web page saved under a model's name, not a model; download the file itself again")
    if kind == "lfs-pointer":
        return ModelLoadError(path, "is a Git LFS pointer, not the model; download the file itself")
    if kind == "empty":
        return ModelLoadError(path, "is empty (0 bytes); download it again")
    return None


def read_header(path: Path | str) -> Header:
    """The header of a ``.safetensors`` file; ModelLoadError names what is wrong with a broken one."""
    path = Path(path)
    try:
        size = path.stat().st_size
        kind = sniff(path)
    except OSError as exc:
        raise ModelLoadError(path, f"cannot be read ({exc.strerror or exc})") from None
    problem = format_problem(path, kind)
    if problem:
        raise problem
    if size < 8:
        raise ModelLoadError(path, f"is truncated ({size} bytes); download it again")
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if kind != "safetensors" or length > MAX_HEADER:
            raise ModelLoadError(path, "is not a safetensors file (its header cannot be read); download it again")
        if 8 + length > size:
            raise ModelLoadError(path, f"is truncated: {size} bytes on disk, more than {8 + length} expected; "
                                       "download it again")
        try:
            raw = json.loads(fh.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelLoadError(path, "is not a safetensors file (its header cannot be read); download it again") from None
    metadata = raw.pop("__metadata__", None) or {}
    try:
        shapes = {k: tuple(v["shape"]) for k, v in raw.items()}
        dtypes = {k: v["dtype"] for k, v in raw.items()}
        end = max((v["data_offsets"][1] for v in raw.values()), default=0)
    except (TypeError, KeyError, IndexError):
        raise ModelLoadError(path, "is not a safetensors file (its header cannot be read); download it again") from None
    if 8 + length + end > size:
        raise ModelLoadError(path, f"is truncated: {size} bytes on disk, {8 + length + end} expected; download it again")
    return Header(path, shapes, dtypes, {str(k): str(v) for k, v in metadata.items()}, 8 + length)


# ---- what a file is ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRole:
    role: str  # "checkpoint" | "lora" | "vae" | "embedding" | "unsupported"
    detail: str = ""  # lora: "lora" / "locon" / "loha" / "lokr"; vae: "ldm" / "diffusers"; unsupported: its name


def _unsupported(header: Header) -> str | None:
    for name, keys in UNSUPPORTED:
        if any(header.has(k) or header.has(UNET + k) for k in keys):
            return name
    return None


def identify(header: Header) -> FileRole:
    keys = header.shapes
    name = _unsupported(header)
    if name:
        return FileRole("unsupported", name)
    if header.has(UNET + "input_blocks.0.0.weight"):
        return FileRole("checkpoint")
    if any(".hada_w1_a" in k for k in keys):
        return FileRole("lora", "loha")
    if any(".lokr_w1" in k for k in keys):
        return FileRole("lora", "lokr")
    downs = [k for k in keys if k.endswith(".lora_down.weight")]
    if downs or any(k.endswith((".lora_A.weight", ".lora.down.weight")) for k in keys):
        conv = any(len(keys[k]) == 4 and keys[k][2:] != (1, 1) for k in downs)
        return FileRole("lora", "locon" if conv else "lora")
    if set(keys) <= {"emb_params", "clip_l", "clip_g"} or any(k.startswith("string_to_param") for k in keys):
        return FileRole("embedding")
    bare = {k.removeprefix("first_stage_model.").removeprefix("vae.") for k in keys}
    if "encoder.conv_in.weight" in bare and "decoder.conv_in.weight" in bare:
        diffusers_names = any(k.startswith("encoder.down_blocks.") for k in bare)
        return FileRole("vae", "diffusers" if diffusers_names else "ldm")
    if "conv_in.weight" in keys and "time_embedding.linear_1.weight" in keys:
        return FileRole("unsupported", "a UNet in diffusers layout (a component of a model folder, not a checkpoint)")
    return FileRole("unsupported", "")


def unsupported_error(path: Path, role: FileRole) -> ModelLoadError:
    if role.detail:
        return ModelLoadError(path, f"is {role.detail}, not a checkpoint Diffuse Studio can run; {SUPPORTED_TEXT}")
    return ModelLoadError(path, f"is not a Stable Diffusion checkpoint (no UNet under {UNET}); {SUPPORTED_TEXT}")


# ---- checkpoints ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointFacts:
    path: Path
    family: str  # "SD 1.x" | "SD 2.x" | "SDXL"
    kind: str  # "txt2img" | "inpaint" | "instruct-pix2pix" | "refiner"
    in_channels: int
    cross_attention_width: int
    text_widths: tuple[int, ...]  # the widths of the text encoders, in pipeline order
    has_vae: bool
    prediction: str  # "epsilon" | "v_prediction" | "unknown"
    prediction_source: str  # "metadata" | "tensor v_pred" | "default" | "unknown"
    old_clip_layout: bool = False  # SD 1.x CLIP keys without "text_model."
    dtype: str = "F32"
    metadata: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def layout(self) -> str:
        """The ldm_layout.LAYOUTS entry of this file."""
        return "SDXL refiner" if self.kind == "refiner" else self.family


def _width(header: Header, *keys: str) -> int | None:
    for key in keys:
        if header.has(key):
            return header.shapes[key][0]
    return None


_TO_K = re.compile(r"^model\.diffusion_model\..*\.attn2\.to_k\.weight$")


def cross_attention_width(header: Header) -> int | None:
    widths = {shape[1] for key, shape in header.shapes.items() if _TO_K.match(key) and len(shape) == 2}
    return widths.pop() if len(widths) == 1 else None


def prediction_type(header: Header) -> tuple[str, str]:
    """("epsilon" | "v_prediction" | "unknown", where it was read) from the file's own words."""
    meta = {k.lower(): v.strip().lower() for k, v in header.metadata.items()}
    stated = meta.get("modelspec.prediction_type", "")
    if stated in ("v", "v_prediction", "v-prediction"):
        return "v_prediction", "metadata"
    if stated in ("epsilon", "eps"):
        return "epsilon", "metadata"
    if meta.get("ss_v_parameterization") == "true" or meta.get("modelspec.architecture", "").endswith("-v"):
        return "v_prediction", "metadata"
    if header.has("v_pred"):
        return "v_prediction", "tensor v_pred"
    return "unknown", "unknown"


def checkpoint_facts(header: Header) -> CheckpointFacts:
    """Family and kind of a checkpoint; ModelLoadError for anything that is not an SD 1.x/2.x/XL one."""
    path = header.path
    role = identify(header)
    if role.role != "checkpoint":
        if role.role in ("lora", "vae", "embedding"):
            what = {"lora": "a LoRA", "vae": "a VAE", "embedding": "a textual-inversion embedding"}[role.role]
            raise ModelLoadError(path, f"is {what}, not a checkpoint; add it to a model instead")
        raise unsupported_error(path, role)
    in_channels = header.shapes[UNET + "input_blocks.0.0.weight"][1]
    old_clip = header.any_with("cond_stage_model.transformer.embeddings.")
    clip_l = _width(header, "cond_stage_model.transformer.text_model.final_layer_norm.weight",
                    "cond_stage_model.transformer.final_layer_norm.weight")
    sd2 = _width(header, "cond_stage_model.model.ln_final.weight")
    xl_l = _width(header, "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight")
    xl_g = _width(header, "conditioner.embedders.1.model.ln_final.weight")
    refiner_g = _width(header, "conditioner.embedders.0.model.ln_final.weight")
    cross = cross_attention_width(header)
    if cross is None:
        raise ModelLoadError(path, "has a UNet without cross-attention layers; it is not a text-to-image checkpoint")
    if xl_g and xl_l:
        family, kind, widths = "SDXL", None, (xl_l, xl_g)
    elif refiner_g:
        family, kind, widths = "SDXL", "refiner", (refiner_g,)
    elif sd2:
        family, kind, widths = "SD 2.x", None, (sd2,)
    elif clip_l:
        family, kind, widths = "SD 1.x", None, (clip_l,)
    else:
        raise ModelLoadError(path, f"has no text encoder inside (a UNet alone, cross-attention width {cross}); "
                                   "it cannot be used as a checkpoint")
    if sum(widths) != cross:
        raise ModelLoadError(path, f"is inconsistent: its UNet expects text {cross} wide, its text encoders give "
                                   f"{' + '.join(map(str, widths))}; the file is damaged or merged wrongly")
    if kind is None:
        kind = KINDS_BY_IN_CHANNELS.get(in_channels)
        if kind is None:
            raise ModelLoadError(path, f"has a UNet with {in_channels} input channels; only 4 (text-to-image), "
                                       "9 (inpainting) and 8 (instruct-pix2pix) are known")
    prediction, source = prediction_type(header)
    if prediction == "unknown" and family != "SD 2.x":
        prediction, source = "epsilon", "default"
    dtype = header.dtypes.get(UNET + "input_blocks.0.0.weight", "F32")
    return CheckpointFacts(path, family, kind, in_channels, cross, widths, header.any_with("first_stage_model."),
                           prediction, source, old_clip, dtype, header.metadata)


def pipeline_class_name(facts: CheckpointFacts) -> str:
    return PIPELINES[("SDXL" if facts.family == "SDXL" else "SD", facts.kind)]


def native_size(facts: CheckpointFacts, prediction: str | None = None) -> int:
    if facts.family == "SD 2.x":
        return 512 if (prediction or facts.prediction) == "epsilon" else 768
    return NATIVE_SIZE[facts.family]


def model_info(facts: CheckpointFacts, model_id: str, name: str | None = None, prediction: str | None = None):
    """The shared ``ModelInfo`` of a checkpoint file, from its facts alone (no torch, nothing loaded):
    what discovery lists. The scheduler config is the shipped architecture's, with the prediction type."""
    from desktop_app.core import paths
    from desktop_app.core.models import ModelInfo

    arch = paths.resource_path("architectures", DEFAULT_ARCHITECTURE[facts.layout])
    scheduler = json.loads((arch / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
    chosen = prediction or facts.prediction
    if chosen != "unknown":
        scheduler["prediction_type"] = chosen
    size = native_size(facts, prediction)
    return ModelInfo(id=model_id, name=name or facts.path.stem, path=facts.path, family=facts.family,
                     pipeline_class=pipeline_class_name(facts), native_size=(size, size), latent_factor=8,
                     latent_channels=4, scheduler_config=scheduler, kind=facts.kind)


def require_kind(facts: CheckpointFacts, task: str = "txt2img") -> None:
    """ModelLoadError when a checkpoint cannot do ``task`` ("txt2img", "img2img", "inpaint", "refine")."""
    path, kind = facts.path, facts.kind
    if kind == "refiner" and task != "refine":
        raise ModelLoadError(path, "is an SDXL refiner: it finishes pictures another model started; "
                                   "choose it as the second pass, with an SDXL model first")
    if kind == "inpaint" and task != "inpaint":
        raise ModelLoadError(path, "is an inpainting model: it needs a picture and a mask; choose it for inpainting, "
                                   "or a text-to-image model")
    if kind == "instruct-pix2pix":
        raise ModelLoadError(path, "is an instruct-pix2pix model (it edits a picture by instruction); "
                                   "Diffuse Studio cannot run those yet")
    if task == "refine" and kind != "refiner" and facts.family != "SDXL":
        raise ModelLoadError(path, f"is an {facts.family} model; the second pass needs an SDXL model or refiner")


class PredictionTypeUnknown(ModelLoadError):
    """An SD 2.x file that does not say whether it predicts ε or v: the window asks once, keeps the
    answer with ``remember_prediction`` and loads again with ``prediction=``."""


def prediction_error(path: Path) -> PredictionTypeUnknown:
    return PredictionTypeUnknown(path, "is an SD 2.x model whose file does not say what it predicts; choose ε (noise: "
                                "the 512-pixel models) or v (velocity: the 768-pixel models) once for this file")


def no_vae_error(path: Path) -> ModelLoadError:
    return ModelLoadError(path, "has no VAE inside; choose a VAE file for this model")

