"""The folder → single-file key layout, derived from the config: known SD 1.5 / SDXL names, and the
round trip folder → single file → from_single_file (test_checkpoints: identical weights)."""

from __future__ import annotations

import json

import pytest

from desktop_app.backend.local import ldm_layout
from desktop_app.core import paths


def config(arch: str, component: str) -> dict:
    return json.loads((paths.resource_path("architectures", arch, component, "config.json")).read_text())


@pytest.mark.parametrize("key, ldm", [
    ("conv_in.weight", "input_blocks.0.0.weight"),
    ("time_embedding.linear_2.bias", "time_embed.2.bias"),
    ("down_blocks.0.resnets.1.norm1.weight", "input_blocks.2.0.in_layers.0.weight"),
    ("down_blocks.0.attentions.0.proj_in.weight", "input_blocks.1.1.proj_in.weight"),
    ("down_blocks.0.downsamplers.0.conv.weight", "input_blocks.3.0.op.weight"),
    ("down_blocks.1.resnets.0.conv_shortcut.weight", "input_blocks.4.0.skip_connection.weight"),
    ("down_blocks.3.resnets.1.time_emb_proj.bias", "input_blocks.11.0.emb_layers.1.bias"),
    ("mid_block.resnets.1.conv2.weight", "middle_block.2.out_layers.3.weight"),
    ("mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight",
     "middle_block.1.transformer_blocks.0.attn2.to_k.weight"),
    ("up_blocks.0.resnets.2.conv1.weight", "output_blocks.2.0.in_layers.2.weight"),
    ("up_blocks.0.upsamplers.0.conv.weight", "output_blocks.2.1.conv.weight"),
    ("up_blocks.1.upsamplers.0.conv.bias", "output_blocks.5.2.conv.bias"),
    ("up_blocks.3.attentions.2.proj_out.weight", "output_blocks.11.1.proj_out.weight"),
    ("conv_norm_out.weight", "out.0.weight"),
])
def test_sd15_unet_names(key, ldm):
    assert ldm_layout.unet_key(key, config("sd15", "unet")) == ldm


def test_sdxl_unet_names():
    unet = config("sdxl", "unet")
    assert ldm_layout.unet_key("down_blocks.1.attentions.0.norm.weight", unet) == "input_blocks.4.1.norm.weight"
    assert ldm_layout.unet_key("add_embedding.linear_1.weight", unet) == "label_emb.0.0.weight"
    assert ldm_layout.unet_key("up_blocks.1.upsamplers.0.conv.weight", unet) == "output_blocks.5.2.conv.weight"
    assert ldm_layout.unet_key("up_blocks.2.resnets.2.norm2.bias", unet) == "output_blocks.8.0.out_layers.0.bias"


@pytest.mark.parametrize("key, ldm, op", [
    ("encoder.down_blocks.1.resnets.0.conv_shortcut.weight", "encoder.down.1.block.0.nin_shortcut.weight", "copy"),
    ("encoder.down_blocks.0.downsamplers.0.conv.bias", "encoder.down.0.downsample.conv.bias", "copy"),
    ("decoder.up_blocks.0.resnets.2.norm1.weight", "decoder.up.3.block.2.norm1.weight", "copy"),
    ("decoder.up_blocks.3.upsamplers.0.conv.weight", "decoder.up.0.upsample.conv.weight", "copy"),
    ("encoder.mid_block.resnets.1.conv1.weight", "encoder.mid.block_2.conv1.weight", "copy"),
    ("decoder.mid_block.attentions.0.to_q.weight", "decoder.mid.attn_1.q.weight", "conv1x1"),
    ("decoder.mid_block.attentions.0.to_out.0.bias", "decoder.mid.attn_1.proj_out.bias", "copy"),
    ("decoder.mid_block.attentions.0.group_norm.weight", "decoder.mid.attn_1.norm.weight", "copy"),
    ("encoder.conv_norm_out.bias", "encoder.norm_out.bias", "copy"),
    ("post_quant_conv.weight", "post_quant_conv.weight", "copy"),
])
def test_vae_names(key, ldm, op):
    piece = ldm_layout.vae_piece(key, config("sd15", "vae"))
    assert (piece.ldm, piece.op) == (ldm, op)


def test_openclip_names_merge_qkv_and_transpose_the_projection():
    keys = ["text_model.encoder.layers.0.self_attn.q_proj.weight", "text_model.encoder.layers.0.self_attn.k_proj.weight",
            "text_model.encoder.layers.0.self_attn.v_proj.weight", "text_model.encoder.layers.0.mlp.fc1.bias",
            "text_model.final_layer_norm.weight", "text_projection.weight",
            "text_model.embeddings.position_embedding.weight"]
    pieces = {p.ldm: p for p in ldm_layout.component_pieces("openclip", "conditioner.embedders.1.model.", {}, keys)}
    qkv = pieces["conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"]
    assert qkv.op == "concat" and [s.split(".")[-2] for s in qkv.sources] == ["q_proj", "k_proj", "v_proj"]
    assert qkv.shape({s: (8, 8) for s in qkv.sources}) == (24, 8)
    projection = pieces["conditioner.embedders.1.model.text_projection"]
    assert projection.shape({"text_projection.weight": (6, 8)}) == (8, 6)
    assert set(pieces) >= {"conditioner.embedders.1.model.transformer.resblocks.0.mlp.c_fc.bias",
                           "conditioner.embedders.1.model.ln_final.weight",
                           "conditioner.embedders.1.model.positional_embedding"}


def test_clip_names_keep_transformers_names_under_text_model():
    assert ldm_layout.clip_key("encoder.layers.3.mlp.fc2.weight") == "text_model.encoder.layers.3.mlp.fc2.weight"
    assert ldm_layout.clip_key("text_model.embeddings.token_embedding.weight") == "text_model.embeddings.token_embedding.weight"
