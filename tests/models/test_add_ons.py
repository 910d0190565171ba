"""LoRA / LoCon (SD 1.x and SDXL, several at once, switched without reloading), VAE files and
textual-inversion embeddings on tiny pipelines; the family checks and the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from desktop_app.backend.local import add_on_facts, add_ons, checkpoint_facts, ldm_layout
from desktop_app.backend.local import prompt_encoding as pe
from desktop_app.core.models import ModelLoadError
from desktop_app.core.recipe import AddOn

from . import fixtures as fx

ARCH = fx.ARCHITECTURES


def fresh(models, arch: str):
    """A pipeline of its own (add-ons change it)."""
    import diffusers

    folder = models.folder(arch)
    name = __import__("json").loads((folder / "model_index.json").read_text())["_class_name"]
    pipe = getattr(diffusers, name).from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def resolver(files: dict[str, Path]):
    def resolve(kind: str, name: str) -> Path:
        return files[name]
    return resolve


def weights_of(module) -> dict[str, torch.Tensor]:
    return {n: m.weight.detach().clone() for n, m in module.named_modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and not n.endswith("base_layer")}


def unet_out(pipe) -> torch.Tensor:
    torch.manual_seed(0)
    sample = torch.randn(1, 4, 8, 8)
    hidden = torch.randn(1, 77, pipe.unet.config.cross_attention_dim)
    extra = {}
    if pipe.unet.config.addition_embed_type == "text_time":
        pooled = pipe.unet.config.projection_class_embeddings_input_dim - 6 * pipe.unet.config.addition_time_embed_dim
        extra = {"added_cond_kwargs": {"text_embeds": torch.randn(1, pooled), "time_ids": torch.randn(1, 6)}}
    with torch.no_grad():
        return pipe.unet(sample, 10, hidden, **extra).sample


def fused_deltas(pipe, before: dict, module_name: str) -> dict[str, torch.Tensor]:
    pipe.fuse_lora()
    module = getattr(pipe, module_name)
    found = {n.removesuffix(".base_layer"): m.weight.detach() - before[n.removesuffix(".base_layer")]
             for n, m in module.named_modules() if n.endswith("base_layer")}
    pipe.unfuse_lora()
    return found


def sd1_key(name: str) -> str:
    return "lora_unet_" + name.replace(".", "_")


@pytest.mark.parametrize("conv", [False, True], ids=["lora", "locon"])
def test_kohya_sd1_lora_deltas_are_scale_alpha_over_rank_up_down(models, tmp_path, conv):
    pipe = fresh(models, "tiny-sd")
    state = fx.kohya_lora(pipe, conv=conv)
    path = tmp_path / "style.safetensors"
    save_file(state, str(path))
    unet_before, te_before = weights_of(pipe.unet), weights_of(pipe.text_encoder)
    add_ons.apply_add_ons(pipe, "SD 1.x", [AddOn("lora", "style", 0.7)], resolver({"style": path}), ARCH / "tiny-sd")
    deltas = fused_deltas(pipe, unet_before, "unet")
    trained = [k.removesuffix(".lora_down.weight") for k in state if k.startswith("lora_unet") and "lora_down" in k]
    assert len(deltas) == len(trained) and (any(d.ndim == 4 for d in deltas.values()) == conv)
    for name, delta in deltas.items():
        assert torch.allclose(delta, 0.7 * fx.lora_delta(state, sd1_key(name)), atol=1e-6, rtol=0), name
    te = fused_deltas(pipe, te_before, "text_encoder")
    assert len(te) == 12
    for name, delta in te.items():
        assert torch.allclose(delta, 0.7 * fx.lora_delta(state, "lora_te_text_model_" + name.replace(".", "_")),
                              atol=1e-6, rtol=0)


def test_kohya_sdxl_locon_with_sgm_names_and_both_text_encoders(models, tmp_path):
    pipe = fresh(models, "tiny-sdxl-mixed")
    state = fx.kohya_lora(pipe, conv=True, sgm=True)
    path = tmp_path / "xl.safetensors"
    save_file(state, str(path))
    assert add_on_facts.lora_facts(checkpoint_facts.read_header(path)).kind == "locon"
    before = weights_of(pipe.unet)
    add_ons.apply_add_ons(pipe, "SDXL", [AddOn("lora", "xl", 0.5)], resolver({"xl": path}), ARCH / "tiny-sdxl-mixed")
    deltas = fused_deltas(pipe, before, "unet")
    assert len(deltas) == sum(1 for k in state if k.startswith("lora_unet") and "lora_down" in k)
    for name, delta in deltas.items():
        key = "lora_unet_" + ldm_layout.unet_key(name + ".weight", pipe.unet.config).removesuffix(".weight").replace(".", "_")
        assert torch.allclose(delta, 0.5 * fx.lora_delta(state, key), atol=1e-6, rtol=0), name
    for module in ("text_encoder", "text_encoder_2"):
        assert any(n.endswith("base_layer") for n, _ in getattr(pipe, module).named_modules())


def test_several_loras_switch_without_reloading_and_go_away_exactly(models, tmp_path):
    pipe = fresh(models, "tiny-sd")
    unet, reference = pipe.unet, unet_out(pipe)
    files, a, b = {}, fx.kohya_lora(pipe, seed=0, text=False), fx.kohya_lora(pipe, seed=1, text=False)
    for name, state in (("a", a), ("b", b)):
        files[name] = tmp_path / f"{name}.safetensors"
        save_file(state, str(files[name]))
    resolve = resolver(files)
    add_ons.apply_add_ons(pipe, "SD 1.x", [AddOn("lora", "a", 0.5), AddOn("lora", "b", -1.0)], resolve, ARCH / "tiny-sd")
    assert sorted(pipe.get_active_adapters()) == ["lora_1", "lora_2"]
    both = {n: sum(m.get_delta_weight(a) for a in m.active_adapters) for n, m in pipe.unet.named_modules()
            if hasattr(m, "get_delta_weight") and m.active_adapters}  # peft's own sum: nothing is fused
    assert len(both) == sum(1 for k in a if "lora_down" in k)
    for name, delta in both.items():
        expected = 0.5 * fx.lora_delta(a, sd1_key(name)) - 1.0 * fx.lora_delta(b, sd1_key(name))
        assert torch.allclose(delta, expected, atol=1e-6, rtol=0)
    add_ons.apply_add_ons(pipe, "SD 1.x", [AddOn("lora", "b", 0.3)], resolve, ARCH / "tiny-sd")
    assert pipe.get_active_adapters() == ["lora_2"] and list(pipe.get_list_adapters()["unet"]) == ["lora_2"]
    add_ons.apply_add_ons(pipe, "SD 1.x", [], resolve, ARCH / "tiny-sd")
    assert pipe.unet is unet and torch.equal(unet_out(pipe), reference)
    assert not any(n.endswith("base_layer") for n, _ in pipe.unet.named_modules())


def test_lora_of_another_family_is_refused_before_loading(models, tmp_path):
    pipe = fresh(models, "tiny-sd")
    xl = fx.kohya_lora(fresh(models, "tiny-sdxl-mixed"), sgm=True)
    path = tmp_path / "xl-style.safetensors"
    save_file(xl, str(path))
    with pytest.raises(ModelLoadError) as caught:
        add_ons.apply_add_ons(pipe, "SD 1.x", [AddOn("lora", "x", 1.0)], resolver({"x": path}), ARCH / "tiny-sd")
    assert str(caught.value) == (f"{path}: is a LoRA for SDXL (cross-attention width 96); "
                                 "the model is SD 1.x (32)")
    assert pipe.get_list_adapters() == {}


@pytest.mark.parametrize("width, family, model, message", [
    (2048, None, ("SD 1.x", 768), "is a LoRA for SDXL (cross-attention width 2048); the model is SD 1.x (768)"),
    (768, None, ("SDXL", 2048), "is a LoRA for SD 1.x (cross-attention width 768); the model is SDXL (2048)"),
    (1024, None, ("SD 1.x", 768), "is a LoRA for SD 2.x (cross-attention width 1024); the model is SD 1.x (768)"),
    (None, "sdxl_base_v1-0", ("SD 1.x", 768), "is a LoRA for SDXL; the model is SD 1.x"),
])
def test_lora_family_rules_for_real_widths(tmp_path, width, family, model, message):
    header = {"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": ("F16", (4, 8))}
    if width:
        header["lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"] = ("F16", (4, width))
    path = fx.write_header_only(tmp_path / "l.safetensors", header, {"ss_base_model_version": family} if family else None)
    lora = add_on_facts.lora_facts(checkpoint_facts.read_header(path))
    with pytest.raises(ModelLoadError) as caught:
        add_on_facts.check_lora_fits(lora, *model)
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize("key, name", [("hada_w1_a", "LoHa"), ("lokr_w1", "LoKr")])
def test_loha_and_lokr_are_named_unsupported(models, tmp_path, key, name):
    path = fx.write_header_only(tmp_path / f"{name}.safetensors", {
        f"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.{key}": ("F16", (4, 32))})
    with pytest.raises(ModelLoadError) as caught:
        add_ons.apply_add_ons(fresh(models, "tiny-sd"), "SD 1.x", [AddOn("lora", "x")], resolver({"x": path}),
                              ARCH / "tiny-sd")
    assert str(caught.value) == f"{path}: is a LyCORIS {name}; only LoRA and LoCon files can be used"


def test_pickled_lora_loads_through_the_safe_loader(models, tmp_path):
    pipe = fresh(models, "tiny-sd")
    state = fx.kohya_lora(pipe, text=False)
    path = tmp_path / "old.pt"
    torch.save(state, path)
    add_ons.apply_add_ons(pipe, "SD 1.x", [AddOn("lora", "old")], resolver({"old": path}), ARCH / "tiny-sd")
    assert pipe.get_active_adapters() == ["lora_1"]


# ---- VAE ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout, suffix", [("ldm", ".safetensors"), ("diffusers", ".safetensors"), ("pickle", ".pt")])
def test_vae_file_replaces_the_vae_bit_for_bit_and_automatic_restores_it(models, tmp_path, layout, suffix):
    pipe = fresh(models, "tiny-sd")
    own = pipe.vae
    path, expected = fx.write_vae(models.folder("tiny-sd"), tmp_path / f"vae-{layout}{suffix}", layout)
    add_ons.apply_add_ons(pipe, "SD 1.x", [AddOn("vae", "v")], resolver({"v": path}), ARCH / "tiny-sd")
    assert pipe.vae is not own
    loaded = pipe.vae.state_dict()
    assert set(loaded) == set(expected) and all(torch.equal(loaded[k], v) for k, v in expected.items())
    add_ons.apply_add_ons(pipe, "SD 1.x", [], resolver({}), ARCH / "tiny-sd")
    assert pipe.vae is own


def test_vae_of_another_family_by_metadata_is_refused(models, tmp_path):
    path, _ = fx.write_vae(models.folder("tiny-sd"), tmp_path / "vae.safetensors")
    from safetensors.torch import load_file

    save_file(load_file(path), str(path), metadata={"modelspec.architecture": "stable-diffusion-xl-v1-base/vae"})
    with pytest.raises(ModelLoadError) as caught:
        add_ons.apply_add_ons(fresh(models, "tiny-sd"), "SD 1.x", [AddOn("vae", "v")], resolver({"v": path}),
                              ARCH / "tiny-sd")
    assert str(caught.value) == f"{path}: is a VAE for SDXL; the model is SD 1.x"


def test_a_vae_name_only_hints(models, tmp_path):
    path, _ = fx.write_vae(models.folder("tiny-sd"), tmp_path / "sdxl_vae.safetensors")
    notes = add_ons.apply_add_ons(fresh(models, "tiny-sd"), "SD 1.x", [AddOn("vae", "v")], resolver({"v": path}),
                                  ARCH / "tiny-sd")
    assert notes == ["sdxl_vae.safetensors: its name suggests SDXL, the model is SD 1.x"]


# ---- embeddings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_sd1_embedding_by_file_name(models, tmp_path, suffix):
    pipe = fresh(models, "tiny-sd")
    path = tmp_path / f"shinystyle{suffix}"
    vectors = fx.write_embedding(path, (32,))[""]
    add_ons.apply_add_ons(pipe, "SD 1.x", [AddOn("embedding", "shinystyle")], resolver({"shinystyle": path}),
                          ARCH / "tiny-sd")
    ids = [pipe.tokenizer.convert_tokens_to_ids(t) for t in ("shinystyle", "shinystyle_1")]
    table = pipe.text_encoder.get_input_embeddings().weight
    assert torch.equal(table[ids], vectors)
    assert pe.count_tokens(pipe.tokenizer, "a shinystyle cat", pipe) == (4, 1)  # two vectors
    assert add_ons.embeddings_in_prompt("a shinystyle cat, (shinystyle-2:1.1)", ["shinystyle", "other"]) == ["shinystyle"]


def test_sdxl_embedding_loads_into_both_encoders_and_unloads_when_switching(models, tmp_path):
    pipe = fresh(models, "tiny-sdxl-mixed")
    size = len(pipe.tokenizer), len(pipe.tokenizer_2)
    path = tmp_path / "xlstyle.safetensors"
    made = fx.write_embedding(path, (32, 64))
    resolve = resolver({"xlstyle": path})
    add_ons.apply_add_ons(pipe, "SDXL", [AddOn("embedding", "xlstyle")], resolve, ARCH / "tiny-sdxl-mixed")
    for tokenizer, encoder, key in ((pipe.tokenizer, pipe.text_encoder, "clip_l"),
                                    (pipe.tokenizer_2, pipe.text_encoder_2, "clip_g")):
        ids = [tokenizer.convert_tokens_to_ids(t) for t in ("xlstyle", "xlstyle_1")]
        assert torch.equal(encoder.get_input_embeddings().weight[ids], made[key])
    add_ons.apply_add_ons(pipe, "SDXL", [], resolve, ARCH / "tiny-sdxl-mixed")
    assert (len(pipe.tokenizer), len(pipe.tokenizer_2)) == size


def test_embedding_of_another_family_is_refused(models, tmp_path):
    path = tmp_path / "sd1style.pt"
    fx.write_embedding(path, (32,))
    with pytest.raises(ModelLoadError) as caught:
        add_ons.apply_add_ons(fresh(models, "tiny-sdxl-mixed"), "SDXL", [AddOn("embedding", "sd1style")],
                              resolver({"sd1style": path}), ARCH / "tiny-sdxl-mixed")
    assert str(caught.value) == f"{path}: is an embedding for another model (32 wide); the model is SDXL (32 + 64)"
    facts = add_on_facts.EmbeddingFacts(path, {"": 768}, 1)
    with pytest.raises(ModelLoadError) as caught:
        add_on_facts.check_embedding_fits(facts, "SDXL", (768, 1280))
    assert str(caught.value) == f"{path}: is an embedding for SD 1.x (768 wide); the model is SDXL (768 + 1280)"
