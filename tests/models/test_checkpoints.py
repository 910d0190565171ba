"""Single-file checkpoints: family, kind and architecture from the header; loading offline with
weights bit-equal to the folder model and the same pixels; every way a file can be wrong."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from desktop_app.backend.local import checkpoint_facts as cf
from desktop_app.backend.local import checkpoints as ck
from desktop_app.core import paths
from desktop_app.core.models import ModelLoadError

from . import fixtures as fx

TINY = {"tiny-sd": ("SD 1.x", "txt2img"), "tiny-sd2": ("SD 2.x", "txt2img"),
        "tiny-sdxl-mixed": ("SDXL", "txt2img"), "tiny-sdxl-refiner": ("SDXL", "refiner")}


def assert_same_weights(pipe, folder: Path, cast=None) -> None:
    for component, reference in fx.folder_state_dicts(folder).items():
        loaded = getattr(pipe, component).state_dict()
        assert set(reference) <= set(loaded), component
        for key, tensor in reference.items():
            expected = tensor.to(cast).to(tensor.dtype) if cast else tensor
            assert torch.equal(loaded[key].to(expected.dtype), expected), f"{component}.{key}"


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(ModelLoadError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


@pytest.mark.parametrize("arch", sorted(TINY))
def test_header_gives_family_kind_and_the_tiny_architecture(models, arch):
    header = cf.read_header(models.single_file(arch))
    facts = cf.checkpoint_facts(header)
    assert (facts.family, facts.kind) == TINY[arch]
    assert ck.match_architecture(header, facts) == arch


@pytest.mark.parametrize("arch, family, kind, width", [
    ("sd15", "SD 1.x", "txt2img", 768), ("sd2", "SD 2.x", "txt2img", 1024),
    ("sdxl", "SDXL", "txt2img", 2048), ("sdxl-refiner", "SDXL", "refiner", 1280)])
def test_real_size_layouts_resolve_to_the_shipped_architectures(arch, family, kind, width):
    shapes = ck.expected_shapes(arch)  # what a real file of this architecture holds, made on meta
    header = cf.Header(Path(f"/nowhere/{arch}.safetensors"), shapes, {k: "F16" for k in shapes}, {}, 0)
    facts = cf.checkpoint_facts(header)
    assert (facts.family, facts.kind, facts.cross_attention_width) == (family, kind, width)
    assert ck.match_architecture(header, facts) == arch


@pytest.mark.parametrize("arch", sorted(TINY))
def test_single_file_weights_are_bit_identical_to_the_folder(models, arch):
    loaded = ck.load_checkpoint(models.single_file(arch), prediction="epsilon")
    assert loaded.architecture == arch
    assert_same_weights(loaded.pipe, models.folder(arch))


def _image(pipe, **kwargs) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(7)
    return pipe("a red circle", num_inference_steps=2, height=64, width=64, generator=generator,
                output_type="np", **kwargs).images[0]


@pytest.mark.parametrize("arch, cls", [("tiny-sd", "StableDiffusionPipeline"), ("tiny-sd2", "StableDiffusionPipeline"),
                                       ("tiny-sdxl-mixed", "StableDiffusionXLPipeline")])
def test_single_file_makes_the_same_pixels_as_the_folder(models, arch, cls):
    import diffusers

    folder_pipe = getattr(diffusers, cls).from_pretrained(models.folder(arch), local_files_only=True)
    folder_pipe.set_progress_bar_config(disable=True)
    loaded = ck.load_checkpoint(models.single_file(arch), prediction="epsilon")
    assert np.array_equal(_image(folder_pipe), _image(loaded.pipe))


def test_fp16_file_holds_the_folder_weights_rounded_to_fp16(models):
    path = models.single_file("tiny-sd", "tiny-sd-fp16", dtype=torch.float16)
    assert cf.checkpoint_facts(cf.read_header(path)).dtype == "F16"
    loaded = ck.load_checkpoint(path, dtype=torch.float32)
    assert_same_weights(loaded.pipe, models.folder("tiny-sd"), cast=torch.float16)


def test_shipped_tokenizers_pass_the_reference_checks(models):
    pipe = ck.load_checkpoint(models.single_file("tiny-sdxl-mixed")).pipe
    assert len(pipe.tokenizer) == 49408
    assert pipe.tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert (pipe.tokenizer.pad_token, pipe.tokenizer_2.pad_token) == ("<|endoftext|>", "!")
    sd2 = ck.load_checkpoint(models.single_file("tiny-sd2"), prediction="epsilon").pipe
    assert sd2.tokenizer.pad_token_id == 0


def test_loading_is_offline_even_when_the_environment_says_online(models, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    ck.load_checkpoint(models.single_file("tiny-sd"))  # the socket guard fails any connection
    assert constants.HF_HUB_OFFLINE is False and os.environ["HF_HUB_OFFLINE"] == "0"


def test_ema_weights_beside_the_plain_ones_are_ignored(models):
    loaded = ck.load_checkpoint(models.single_file("tiny-sd", "tiny-sd-ema", ema=True))
    assert_same_weights(loaded.pipe, models.folder("tiny-sd"))


def test_old_clip_layout_without_text_model_loads(models):
    path = models.single_file("tiny-sd", "tiny-sd-old-clip", old_clip=True)
    assert cf.checkpoint_facts(cf.read_header(path)).old_clip_layout
    assert_same_weights(ck.load_checkpoint(path).pipe, models.folder("tiny-sd"))


def test_inpainting_file_loads_as_an_inpainting_pipeline(models):
    path = models.single_file("tiny-sd", "tiny-sd-inpaint", unet={"in_channels": 9})
    facts = cf.checkpoint_facts(cf.read_header(path))
    assert (facts.kind, facts.in_channels) == ("inpaint", 9)
    loaded = ck.load_checkpoint(path, task="inpaint")
    assert type(loaded.pipe).__name__ == "StableDiffusionInpaintPipeline"
    assert loaded.architecture == "tiny-sd"
    assert_same_weights(loaded.pipe, models.folder("tiny-sd", in_channels=9))
    assert error_of(ck.load_checkpoint, path, task="txt2img") == (
        f"{path}: is an inpainting model: it needs a picture and a mask; choose it for inpainting, "
        "or a text-to-image model")


def test_instruct_pix2pix_is_recognised_and_refused(models):
    path = models.single_file("tiny-sd", "tiny-sd-pix2pix", unet={"in_channels": 8})
    assert cf.checkpoint_facts(cf.read_header(path)).kind == "instruct-pix2pix"
    assert error_of(ck.load_checkpoint, path, task="txt2img") == (
        f"{path}: is an instruct-pix2pix model (it edits a picture by instruction); Diffuse Studio cannot run those yet")


def test_refiner_is_refused_for_txt2img_and_loads_as_a_second_pass(models):
    path = models.single_file("tiny-sdxl-refiner")
    assert error_of(ck.load_checkpoint, path, task="txt2img") == (
        f"{path}: is an SDXL refiner: it finishes pictures another model started; "
        "choose it as the second pass, with an SDXL model first")
    loaded = ck.load_checkpoint(path, task="refine")
    assert type(loaded.pipe).__name__ == "StableDiffusionXLImg2ImgPipeline"
    assert loaded.pipe.text_encoder is None and loaded.pipe.tokenizer_2.pad_token == "!"


def test_sd2_prediction_type_from_metadata_or_the_users_choice(models):
    plain = models.single_file("tiny-sd2")
    with pytest.raises(ck.PredictionTypeUnknown) as caught:
        ck.load_checkpoint(plain)
    assert str(caught.value) == (
        f"{plain}: is an SD 2.x model whose file does not say what it predicts; choose ε (noise: the 512-pixel "
        "models) or v (velocity: the 768-pixel models) once for this file")
    stated = models.single_file("tiny-sd2", "tiny-sd2-v", metadata={"modelspec.prediction_type": "v"})
    assert ck.load_checkpoint(stated).pipe.scheduler.config.prediction_type == "v_prediction"
    assert cf.remembered_prediction(plain) is None
    cf.remember_prediction(plain, "v_prediction")
    choice = cf.remembered_prediction(plain)
    assert ck.load_checkpoint(plain, prediction=choice).pipe.scheduler.config.prediction_type == "v_prediction"


@pytest.mark.parametrize("metadata, tensor, expected", [
    ({"modelspec.prediction_type": "epsilon"}, False, ("epsilon", "metadata")),
    ({"modelspec.architecture": "stable-diffusion-v2-768-v"}, False, ("v_prediction", "metadata")),
    ({"ss_v_parameterization": "True"}, False, ("v_prediction", "metadata")),
    ({}, True, ("v_prediction", "tensor v_pred")),
    ({}, False, ("unknown", "unknown"))])
def test_prediction_type_rules(tmp_path, metadata, tensor, expected):
    header = {"v_pred": ("F32", (0,))} if tensor else {"x": ("F32", (1,))}
    path = fx.write_header_only(tmp_path / "m.safetensors", header, metadata)
    assert cf.prediction_type(cf.read_header(path)) == expected


def test_checkpoint_without_vae_needs_a_vae_file(models):
    path = models.single_file("tiny-sd", "tiny-sd-no-vae", components=("unet", "text_encoder"))
    assert not cf.checkpoint_facts(cf.read_header(path)).has_vae
    assert error_of(ck.load_checkpoint, path) == f"{path}: has no VAE inside; choose a VAE file for this model"
    import diffusers

    vae = diffusers.AutoencoderKL.from_pretrained(models.folder("tiny-sd") / "vae")
    loaded = ck.load_checkpoint(path, vae=vae)
    assert loaded.pipe.vae is vae


def test_same_width_text_encoders_are_caught_by_the_meta_check(models):
    """tiny-sdxl's encoders are both 32 wide: diffusers then loads CLIP-L into text_encoder_2 and leaves
    its projection on meta, silently (MODELS.md). The check after loading names it."""
    path = models.single_file("tiny-sdxl")
    message = error_of(ck.load_checkpoint, path)
    assert message.startswith(f"{path}: did not fill the text_encoder_2: ")
    assert message.endswith("tensors were not in the file (e.g. text_projection.weight); "
                            "the file is incomplete or of another architecture")


def test_pickled_checkpoints_load_identically(models, tmp_path):
    from safetensors.torch import load_file

    state = load_file(models.single_file("tiny-sd"))
    for style in ("plain", "lightning"):
        path = fx.write_pickle(state, tmp_path / f"{style}.ckpt", style)
        loaded = ck.load_checkpoint(path)
        assert loaded.facts.path == path and loaded.source.suffix == ".safetensors"
        assert loaded.source.is_relative_to(paths.cache_dir())
        assert_same_weights(loaded.pipe, models.folder("tiny-sd"))


# ---- broken and foreign files -------------------------------------------------------------------------


def test_truncated_download(models, tmp_path):
    path = fx.write_truncated(models.single_file("tiny-sd"), tmp_path / "cut.safetensors")
    size = path.stat().st_size
    expected = models.single_file("tiny-sd").stat().st_size
    assert error_of(ck.load_checkpoint, path) == (
        f"{path}: is truncated: {size} bytes on disk, {expected} expected; download it again")
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(b"\x10\x00")
    assert error_of(cf.read_header, tiny) == f"{tiny}: is truncated (2 bytes); download it again"


def test_html_page_saved_as_a_model(tmp_path):
    for name in ("model.safetensors", "model.ckpt"):
        path = fx.write_html(tmp_path / name)
        assert error_of(ck.load_checkpoint, path) == (
            f"{path}: is a web page saved under a model's name, not a model; download the file itself again")


def test_lfs_pointer_and_garbage(tmp_path):
    pointer = tmp_path / "pointer.safetensors"
    pointer.write_text("version https://git-lfs.example/spec/v1\noid sha256:abc\nsize 2132625894\n")
    assert error_of(cf.read_header, pointer) == f"{pointer}: is a Git LFS pointer, not the model; download the file itself"
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x01\x02\x03\x04\x05\x06\x07\x08not json at all")
    assert error_of(cf.read_header, garbage) == (
        f"{garbage}: is not a safetensors file (its header cannot be read); download it again")


@pytest.mark.parametrize("key, name", [
    ("model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale", "FLUX"),
    ("double_blocks.0.img_attn.norm.key_norm.scale", "FLUX"),
    ("model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias", "Stable Diffusion 3"),
    ("clip_txt_mapper.weight", "Stable Cascade")])
def test_unsupported_architectures_are_named(tmp_path, key, name):
    path = fx.write_header_only(tmp_path / "other.safetensors", {key: ("F16", (4,))})
    assert error_of(ck.load_checkpoint, path) == (
        f"{path}: is {name}, not a checkpoint Diffuse Studio can run; "
        "Diffuse Studio runs Stable Diffusion 1.x, 2.x and SDXL checkpoints")


def test_unknown_file_and_add_ons_chosen_as_checkpoints(tmp_path):
    path = fx.write_header_only(tmp_path / "what.safetensors", {"weight": ("F32", (4,))})
    assert error_of(ck.load_checkpoint, path) == (
        f"{path}: is not a Stable Diffusion checkpoint (no UNet under model.diffusion_model.); "
        "Diffuse Studio runs Stable Diffusion 1.x, 2.x and SDXL checkpoints")
    lora = fx.write_header_only(tmp_path / "lora.safetensors", {
        "lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": ("F16", (4, 32))})
    assert error_of(ck.load_checkpoint, lora) == f"{lora}: is a LoRA, not a checkpoint; add it to a model instead"


def test_a_shape_no_architecture_has_is_named_with_the_closest(models, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(models.single_file("tiny-sd"))
    state["model.diffusion_model.out.2.weight"] = torch.zeros(4, 32, 5, 5)
    path = tmp_path / "odd.safetensors"
    save_file(state, str(path))
    assert error_of(ck.load_checkpoint, path) == (
        f"{path}: is an SD 1.x checkpoint of a shape no shipped architecture has (closest: tiny-sd, 1 tensors "
        "differ, e.g. model.diffusion_model.out.2.weight is [4, 32, 5, 5], tiny-sd has [4, 32, 3, 3])")


def test_model_info_from_facts_alone(models):
    sdxl = cf.checkpoint_facts(cf.read_header(models.single_file("tiny-sdxl-mixed")))
    info = cf.model_info(sdxl, "x")
    assert (info.family, info.native_size, info.pipeline_class) == ("SDXL", (1024, 1024), "StableDiffusionXLPipeline")
    refiner = cf.model_info(cf.checkpoint_facts(cf.read_header(models.single_file("tiny-sdxl-refiner"))), "r")
    assert (refiner.kind, refiner.pipeline_class) == ("refiner", "StableDiffusionXLImg2ImgPipeline")
    sd2 = cf.checkpoint_facts(cf.read_header(models.single_file("tiny-sd2")))
    assert cf.model_info(sd2, "s", prediction="v_prediction").native_size == (768, 768)
    eps = cf.model_info(sd2, "s", prediction="epsilon")
    assert eps.native_size == (512, 512) and eps.scheduler_config["prediction_type"] == "epsilon"
