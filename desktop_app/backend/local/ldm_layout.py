"""The original (LDM / SGM) key layout of a single-file checkpoint, derived from a diffusers config.

A single file names its tensors as the original training code did (``model.diffusion_model.
input_blocks.4.1.…``); a diffusers folder names them by module (``down_blocks.1.attentions.0.…``).
This module states the inverse of diffusers' single-file conversion for the parts Stable Diffusion
1.x, 2.x and XL are made of, with every block index computed from the config (``layers_per_block``,
the block types, the number of blocks), so it holds for the real architectures and the tiny test
ones alike. It is plain key plumbing, without torch:

- ``checkpoints`` uses it to say which key → shape map each shipped architecture expects in a file;
- the test fixtures use it (with torch) to write a folder model as a single file.

A ``Piece`` is one tensor of the file: its LDM key, the diffusers keys it is made from and how
(``copy``; ``concat``: OpenCLIP keeps q, k, v as one ``in_proj``; ``transpose``: OpenCLIP's
``text_projection`` is stored transposed; ``conv1x1``: the VAE's attention projections are 1×1
convolutions in the original code and linear layers in diffusers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Where each component lives in a file, per family (and for the SDXL refiner, which has only the
# second, OpenCLIP, text encoder and names it embedder 0).
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
LAYOUTS: dict[str, dict[str, tuple[str, str]]] = {
    "SD 1.x": {"unet": ("unet", UNET_PREFIX), "vae": ("vae", VAE_PREFIX),
               "text_encoder": ("clip", "cond_stage_model.transformer.")},
    "SD 2.x": {"unet": ("unet", UNET_PREFIX), "vae": ("vae", VAE_PREFIX),
               "text_encoder": ("openclip", "cond_stage_model.model.")},
    "SDXL": {"unet": ("unet", UNET_PREFIX), "vae": ("vae", VAE_PREFIX),
             "text_encoder": ("clip", "conditioner.embedders.0.transformer."),
             "text_encoder_2": ("openclip", "conditioner.embedders.1.model.")},
    "SDXL refiner": {"unet": ("unet", UNET_PREFIX), "vae": ("vae", VAE_PREFIX),
                     "text_encoder_2": ("openclip", "conditioner.embedders.0.model.")},
}

_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
           ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
               "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_OPENCLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
                   "self_attn.out_proj": "attn.out_proj"}


@dataclass(frozen=True)
class Piece:
    ldm: str
    sources: tuple[str, ...]
    op: str = "copy"  # "copy" | "concat" | "transpose" | "conv1x1"

    def shape(self, shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
        first = tuple(shapes[self.sources[0]])
        if self.op == "concat":
            return (sum(shapes[s][0] for s in self.sources), *first[1:])
        if self.op == "transpose":
            return first[::-1]
        if self.op == "conv1x1":
            return (*first, 1, 1)
        return first


def _split(key: str, prefix: str) -> str:
    return key[len(prefix):]


def _resnet(rest: str) -> str:
    for new, old in _RESNET:
        if rest.startswith(new + "."):
            return old + rest[len(new):]
    raise ValueError(f"unexpected resnet tensor {rest!r}")


def unet_key(key: str, config: Mapping) -> str:
    """The LDM name (without the file prefix) of a diffusers UNet2DConditionModel tensor."""
    per = config["layers_per_block"] + 1  # LDM slots per down block: the resnets, then the downsampler
    for name, old in _UNET_FIXED.items():
        if key.startswith(name + "."):
            return old + key[len(name):]
    parts = key.split(".")
    if parts[0] == "down_blocks":
        block, what = int(parts[1]), parts[2]
        if what == "downsamplers":  # down_blocks.b.downsamplers.0.conv.X
            return f"input_blocks.{(block + 1) * per}.0.op." + ".".join(parts[5:])
        slot = 1 + block * per + int(parts[3])
        rest = ".".join(parts[4:])
        return f"input_blocks.{slot}.0.{_resnet(rest)}" if what == "resnets" else f"input_blocks.{slot}.1.{rest}"
    if parts[0] == "mid_block":
        index, rest = int(parts[2]), ".".join(parts[3:])
        return f"middle_block.{2 * index}.{_resnet(rest)}" if parts[1] == "resnets" else f"middle_block.1.{rest}"
    if parts[0] == "up_blocks":
        block, what = int(parts[1]), parts[2]
        if what == "upsamplers":  # after the resnet and, in a cross-attention block, the attention
            slot = block * per + per - 1
            position = 2 if "CrossAttn" in config["up_block_types"][block] else 1
            return f"output_blocks.{slot}.{position}.conv." + ".".join(parts[5:])
        slot = block * per + int(parts[3])
        rest = ".".join(parts[4:])
        return f"output_blocks.{slot}.0.{_resnet(rest)}" if what == "resnets" else f"output_blocks.{slot}.1.{rest}"
    raise ValueError(f"unexpected UNet tensor {key!r}")


def _vae_resnet(rest: str) -> str:
    return rest.replace("conv_shortcut", "nin_shortcut")


def vae_piece(key: str, config: Mapping) -> Piece:
    """The LDM tensor (without the file prefix) of a diffusers AutoencoderKL tensor."""
    n_up = len(config["up_block_types"])
    coder, rest = key.split(".", 1)
    parts = rest.split(".")
    if coder not in ("encoder", "decoder"):  # quant_conv, post_quant_conv
        return Piece(key, (key,))
    if parts[0] == "conv_norm_out":
        return Piece(f"{coder}.norm_out.{parts[1]}", (key,))
    if parts[0] in ("conv_in", "conv_out"):
        return Piece(key, (key,))
    if parts[0] == "down_blocks":
        i = parts[1]
        if parts[2] == "downsamplers":
            return Piece(f"encoder.down.{i}.downsample.conv.{parts[-1]}", (key,))
        return Piece(f"encoder.down.{i}.block.{parts[3]}." + _vae_resnet(".".join(parts[4:])), (key,))
    if parts[0] == "up_blocks":
        i = n_up - 1 - int(parts[1])  # LDM numbers the decoder's levels from the bottom
        if parts[2] == "upsamplers":
            return Piece(f"decoder.up.{i}.upsample.conv.{parts[-1]}", (key,))
        return Piece(f"decoder.up.{i}.block.{parts[3]}." + _vae_resnet(".".join(parts[4:])), (key,))
    if parts[0] == "mid_block" and parts[1] == "resnets":
        return Piece(f"{coder}.mid.block_{int(parts[2]) + 1}." + _vae_resnet(".".join(parts[3:])), (key,))
    if parts[0] == "mid_block" and parts[1] == "attentions":
        inner = ".".join(parts[3:])
        for new, old in _VAE_ATTENTION.items():
            if inner.startswith(new + "."):
                tail = inner[len(new) + 1:]
                op = "conv1x1" if tail == "weight" and new != "group_norm" else "copy"
                return Piece(f"{coder}.mid.attn_1.{old}.{tail}", (key,), op)
    raise ValueError(f"unexpected VAE tensor {key!r}")


def clip_key(key: str) -> str:
    """OpenAI CLIP (SD 1.x, SDXL's first encoder) keeps transformers' names under ``text_model.``."""
    return key if key.startswith("text_model.") or key.startswith("text_projection") else "text_model." + key


def openclip_pieces(keys: Iterable[str]) -> list[Piece]:
    """OpenCLIP's names for a transformers CLIP text model (SD 2.x, SDXL's second encoder)."""
    keys = sorted(keys)
    pieces: list[Piece] = []
    for key in keys:
        bare = key.removeprefix("text_model.")
        if bare == "embeddings.position_embedding.weight":
            pieces.append(Piece("positional_embedding", (key,)))
        elif bare == "embeddings.token_embedding.weight":
            pieces.append(Piece("token_embedding.weight", (key,)))
        elif bare.startswith("final_layer_norm."):
            pieces.append(Piece("ln_final." + bare.split(".")[-1], (key,)))
        elif bare == "text_projection.weight":
            pieces.append(Piece("text_projection", (key,), "transpose"))
        elif bare.startswith("encoder.layers."):
            parts = bare.split(".")
            layer, inner = parts[2], ".".join(parts[3:])
            if inner.startswith("self_attn.q_proj."):
                kind = parts[-1]  # weight | bias
                sources = tuple(key.replace("q_proj", p) for p in ("q_proj", "k_proj", "v_proj"))
                pieces.append(Piece(f"transformer.resblocks.{layer}.attn.in_proj_{kind}", sources, "concat"))
            elif inner.startswith(("self_attn.k_proj.", "self_attn.v_proj.")):
                continue  # part of the in_proj above
            else:
                for new, old in _OPENCLIP_LAYER.items():
                    if inner.startswith(new + "."):
                        pieces.append(Piece(f"transformer.resblocks.{layer}.{old}{inner[len(new):]}", (key,)))
                        break
                else:
                    raise ValueError(f"unexpected text encoder tensor {key!r}")
        else:
            raise ValueError(f"unexpected text encoder tensor {key!r}")
    return pieces


def component_pieces(kind: str, prefix: str, config: Mapping, keys: Iterable[str]) -> list[Piece]:
    """Every file tensor of one component (``kind``: unet, vae, clip, openclip), with ``prefix``."""
    keys = list(keys)
    if kind == "unet":
        pieces = [Piece(unet_key(k, config), (k,)) for k in keys]
    elif kind == "vae":
        pieces = [vae_piece(k, config) for k in keys]
    elif kind == "clip":
        pieces = [Piece(clip_key(k), (k,)) for k in keys]
    elif kind == "openclip":
        pieces = openclip_pieces(keys)
    else:
        raise ValueError(f"unknown component kind {kind!r}")
    return [Piece(prefix + p.ldm, p.sources, p.op) for p in pieces]


def ldm_shapes(layout: Mapping[str, tuple[str, str]], configs: Mapping[str, Mapping],
               shapes: Mapping[str, Mapping[str, tuple[int, ...]]]) -> dict[str, tuple[int, ...]]:
    """The key → shape map a single file of these components holds (``shapes``: per component, the
    diffusers state dict's shapes; ``configs``: per component, its config)."""
    found: dict[str, tuple[int, ...]] = {}
    for component, (kind, prefix) in layout.items():
        if component not in shapes:
            continue
        for piece in component_pieces(kind, prefix, configs[component], shapes[component]):
            found[piece.ldm] = piece.shape(shapes[component])
    return found
