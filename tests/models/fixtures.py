"""Builders for the model files these tests use, all made here from the tiny architectures.

- ``build_folder``: a diffusers folder with random (seeded) weights and the shipped CLIP tokenizer;
- ``ldm_state_dict`` / ``write_single_file``: the same model as one file in the original layout
  (what users download), derived from the config by ``desktop_app.backend.local.ldm_layout``, with
  the extra tensors real files carry (SD 2.x's unused last OpenCLIP layer and projection, the DDPM
  schedule buffers, CLIP's position ids, optionally EMA copies);
- ``write_pickle``: the same as a pickled ``.ckpt`` (plain, CompVis/Lightning-style, or hostile);
- LoRA, LoCon, LoHa, VAE and embedding files, and broken files of every kind the app names.

Nothing is downloaded and nothing is written outside the folders the tests pass in.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import torch
from safetensors.torch import save_file

from desktop_app.backend.local import ldm_layout
from desktop_app.core import paths

ARCHITECTURES = paths.resource_path("architectures")
TOKENIZER = paths.resource_path("tokenizers", "clip")


def arch_family(arch: str) -> str:
    index = json.loads((ARCHITECTURES / arch / "model_index.json").read_text())
    if index["_class_name"].startswith("StableDiffusionXL"):
        return "SDXL" if index.get("text_encoder", [None])[0] else "SDXL refiner"
    act = json.loads((ARCHITECTURES / arch / "text_encoder" / "config.json").read_text())["hidden_act"]
    return "SD 1.x" if act == "quick_gelu" else "SD 2.x"


def _write_tokenizer(target: Path, pad: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(TOKENIZER / name, target / name)
    (target / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": pad}))


def _network(library: str, class_name: str, config_dir: Path):
    import diffusers
    import transformers

    cls = getattr(transformers if library == "transformers" else diffusers, class_name)
    if library == "transformers":
        config = json.loads((config_dir / "config.json").read_text())
        config = {k: v for k, v in config.items() if k not in ("architectures", "model_type")}
        return cls(transformers.CLIPTextConfig(**config))
    return cls.from_config(cls.load_config(config_dir))


def build_folder(arch: str, folder: Path, *, seed: int = 0, unet: dict | None = None) -> Path:
    """A diffusers folder of ``arch`` with random weights; ``unet`` overrides UNet config values."""
    folder = Path(folder)
    shutil.copytree(ARCHITECTURES / arch, folder)
    if unet:
        config_file = folder / "unet" / "config.json"
        config_file.write_text(json.dumps(json.loads(config_file.read_text()) | unet, indent=2))
    index = json.loads((folder / "model_index.json").read_text())
    torch.manual_seed(seed)
    for component, value in sorted(index.items()):
        if component.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        library, class_name = value
        if class_name == "CLIPTokenizer":
            sd2_or_second = component == "tokenizer_2" or arch_family(arch) == "SD 2.x"
            _write_tokenizer(folder / component, "!" if sd2_or_second else "<|endoftext|>")
        elif not class_name.endswith("Scheduler"):
            network = _network(library, class_name, folder / component)
            with torch.no_grad():  # norms start at exactly 1 and 0, biases at 0: make every value count
                for parameter in network.parameters():
                    if parameter.ndim == 1:
                        parameter.add_(torch.randn_like(parameter) * 0.1)
            network.save_pretrained(folder / component)
    return folder


def folder_state_dicts(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Each network's diffusers state dict, read from the folder's files."""
    from safetensors.torch import load_file

    found = {}
    for component in ("unet", "vae", "text_encoder", "text_encoder_2"):
        files = sorted((Path(folder) / component).glob("*.safetensors"))
        if files:
            found[component] = {k: v for f in files for k, v in load_file(f).items()}
    return found


def _config(folder: Path, component: str) -> dict:
    return json.loads((Path(folder) / component / "config.json").read_text())


def ldm_state_dict(folder: Path, family: str, *, extras: bool = True, ema: bool = False,
                   old_clip: bool = False, components=None) -> dict[str, torch.Tensor]:
    """The folder's weights under the single-file names of ``family`` (see ldm_layout.LAYOUTS)."""
    layout = ldm_layout.LAYOUTS[family]
    tensors = folder_state_dicts(folder)
    out: dict[str, torch.Tensor] = {}
    for component, (kind, prefix) in layout.items():
        if component not in tensors or (components is not None and component not in components):
            continue
        sd = tensors[component]
        for piece in ldm_layout.component_pieces(kind, prefix, _config(folder, component), sd):
            parts = [sd[s] for s in piece.sources]
            if piece.op == "concat":
                value = torch.cat(parts, 0)
            elif piece.op == "transpose":
                value = parts[0].T
            elif piece.op == "conv1x1":
                value = parts[0][:, :, None, None]
            else:
                value = parts[0]
            out[piece.ldm] = value.contiguous().clone()
        if extras:
            out.update(_extras(kind, prefix, _config(folder, component), sd))
    if old_clip:  # SD 1.x files from before transformers nested CLIP under text_model.
        old = "cond_stage_model.transformer.text_model."
        out = {("cond_stage_model.transformer." + k[len(old):] if k.startswith(old) else k): v for k, v in out.items()}
    if extras:
        out["alphas_cumprod"] = torch.linspace(0.999, 0.005, 1000)
        out["betas"] = torch.linspace(0.00085, 0.012, 1000)
    if ema:  # A1111 loads the plain weights; the EMA copy sits beside them under model_ema.
        for key in [k for k in out if k.startswith(ldm_layout.UNET_PREFIX)]:
            out["model_ema." + key[len(ldm_layout.UNET_PREFIX):].replace(".", "")] = torch.randn_like(out[key].float())
        out["model_ema.decay"] = torch.tensor(0.9999)
    return out


def _extras(kind: str, prefix: str, config: dict, sd: dict) -> dict[str, torch.Tensor]:
    """Tensors real files carry that the diffusers model does not use."""
    width = config.get("hidden_size")
    if kind == "clip":
        return {prefix + "text_model.embeddings.position_ids": torch.arange(77)[None]}
    if kind == "openclip":
        extra = {prefix + "logit_scale": torch.tensor(4.6)}
        if "text_projection.weight" not in sd:  # SD 2.x: the projection and the last layer are unused
            extra[prefix + "text_projection"] = torch.randn(width, config["projection_dim"])
            last = config["num_hidden_layers"]
            block = prefix + f"transformer.resblocks.{last}."
            inner = config["intermediate_size"]
            for name, shape in (("attn.in_proj_weight", (3 * width, width)), ("attn.in_proj_bias", (3 * width,)),
                                ("attn.out_proj.weight", (width, width)), ("attn.out_proj.bias", (width,)),
                                ("ln_1.weight", (width,)), ("ln_1.bias", (width,)), ("ln_2.weight", (width,)),
                                ("ln_2.bias", (width,)), ("mlp.c_fc.weight", (inner, width)), ("mlp.c_fc.bias", (inner,)),
                                ("mlp.c_proj.weight", (width, inner)), ("mlp.c_proj.bias", (width,))):
                extra[block + name] = torch.randn(shape)
        return extra
    return {}


def write_single_file(folder: Path, family: str, path: Path, *, dtype: torch.dtype | None = None,
                      metadata: dict | None = None, **options) -> Path:
    sd = ldm_state_dict(folder, family, **options)
    if dtype is not None:
        sd = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path), metadata=metadata)
    return path


# ---- pickles ------------------------------------------------------------------------------------------


class ModelCheckpoint:
    """Stands in for pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint in a written pickle."""

    def __init__(self):
        self.monitor = None
        self.best_model_score = None


ModelCheckpoint.__module__ = "pytorch_lightning.callbacks.model_checkpoint"


class _Marker:
    """Pickles to a call that writes a file: what a hostile checkpoint does when it is unpickled."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


def write_pickle(state_dict: dict, path: Path, style: str = "plain", marker: Path | None = None,
                 protocol: int = 2) -> Path:
    """``style``: "plain" ({"state_dict"}), "lightning" (CompVis: a ModelCheckpoint callback, numpy
    scalars, epoch and global_step), "hostile" (a __reduce__ payload that would write ``marker``).
    ``protocol`` 2 is torch.save's own; a hostile file may use any."""
    import sys
    import types

    import numpy as np

    payload: dict = {"state_dict": state_dict}
    if style == "lightning":
        module_name = "pytorch_lightning.callbacks.model_checkpoint"
        fake = types.ModuleType(module_name)
        fake.ModelCheckpoint = ModelCheckpoint
        for name in ("pytorch_lightning", "pytorch_lightning.callbacks", module_name):
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules[module_name] = fake
        try:
            payload.update(epoch=6, global_step=np.int64(840000), callbacks={ModelCheckpoint: ModelCheckpoint()},
                           best=np.float64(0.123), dtype_kind=np.dtype("float32"))
            torch.save(payload, path)
        finally:
            for name in ("pytorch_lightning", "pytorch_lightning.callbacks", module_name):
                sys.modules.pop(name, None)
        return path
    if style == "hostile":
        payload["surprise"] = _Marker(marker)
    torch.save(payload, path, pickle_protocol=protocol)
    return path


# ---- broken files -------------------------------------------------------------------------------------


def write_truncated(source: Path, path: Path, keep: float = 0.5) -> Path:
    data = Path(source).read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_html(path: Path) -> Path:
    path.write_text("<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>\n")
    return path


def write_header_only(path: Path, header: dict, metadata: dict | None = None) -> Path:
    """A safetensors file whose header lists ``header`` (key → (dtype, shape)), data all zeros."""
    entries, offset = {}, 0
    sizes = {"F16": 2, "BF16": 2, "F32": 4, "I64": 8}
    for key, (dtype, shape) in header.items():
        count = 1
        for n in shape:
            count *= n
        entries[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + count * sizes[dtype]]}
        offset += count * sizes[dtype]
    if metadata:
        entries["__metadata__"] = metadata
    raw = json.dumps(entries).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return path


# ---- LoRA, VAE and embedding files -----------------------------------------------------------------


def lora_targets(module: torch.nn.Module, conv: bool) -> list[tuple[str, torch.nn.Module]]:
    """The layers a kohya LoRA trains: the linear layers of the transformer blocks (attention,
    projections, feed-forward); LoCon adds the convolutions of the resnets and samplers."""
    found = []
    for name, layer in module.named_modules():
        in_blocks = name.startswith(("down_blocks", "mid_block", "up_blocks"))
        if isinstance(layer, torch.nn.Linear) and (not in_blocks or "attentions" in name):
            if name.startswith(("time_embedding", "add_embedding")):
                continue
            found.append((name, layer))
        elif conv and isinstance(layer, torch.nn.Conv2d) and in_blocks:
            found.append((name, layer))
    return found


def kohya_lora(pipe, *, conv: bool = False, sgm: bool = False, text: bool = True, rank: int = 4,
               alpha: float = 2.0, seed: int = 0) -> dict[str, torch.Tensor]:
    """A kohya-format LoRA (LoCon with ``conv``) for ``pipe``: UNet names as diffusers' modules (SD 1.x)
    or as the original SGM UNet (``sgm``, as kohya's SDXL scripts write them)."""
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}

    def add(key: str, layer: torch.nn.Module) -> None:
        if isinstance(layer, torch.nn.Linear):
            down = torch.randn(rank, layer.in_features, generator=generator) * 0.1
            up = torch.randn(layer.out_features, rank, generator=generator) * 0.1
        else:
            down = torch.randn(rank, layer.in_channels, *layer.kernel_size, generator=generator) * 0.1
            up = torch.randn(layer.out_channels, rank, 1, 1, generator=generator) * 0.1
        out[key + ".lora_down.weight"], out[key + ".lora_up.weight"] = down, up
        out[key + ".alpha"] = torch.tensor(alpha)

    for name, layer in lora_targets(pipe.unet, conv):
        if name.startswith(("conv_in", "conv_out")):
            continue
        module = ldm_layout.unet_key(name + ".weight", pipe.unet.config).removesuffix(".weight") if sgm else name
        add("lora_unet_" + module.replace(".", "_"), layer)
    if text:
        encoders = [("te1" if pipe.__class__.__name__.startswith("StableDiffusionXL") else "te", pipe.text_encoder),
                    ("te2", getattr(pipe, "text_encoder_2", None))]
        for tag, encoder in encoders:
            if encoder is None:
                continue
            for name, layer in encoder.named_modules():
                if isinstance(layer, torch.nn.Linear) and ".layers." in "." + name:
                    full = name if name.startswith("text_model.") else "text_model." + name
                    add(f"lora_{tag}_" + full.replace(".", "_"), layer)
    return out


def lora_delta(state: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    """α/r · up @ down of one kohya module (reshaped to the conv kernel for LoCon)."""
    down, up = state[key + ".lora_down.weight"], state[key + ".lora_up.weight"]
    scale = float(state[key + ".alpha"]) / down.shape[0]
    if down.ndim == 4:
        return scale * (up.flatten(1) @ down.flatten(1)).reshape(up.shape[0], *down.shape[1:])
    return scale * (up @ down)


def write_vae(folder: Path, path: Path, layout: str = "ldm", seed: int = 1) -> tuple[Path, dict]:
    """A VAE file of the folder's VAE architecture with other random weights: LDM names (as the
    VAE files users download), diffusers names, or a pickled ``{"state_dict"}`` of LDM names."""
    import diffusers

    config_dir = Path(folder) / "vae"
    torch.manual_seed(seed)
    vae = diffusers.AutoencoderKL.from_config(diffusers.AutoencoderKL.load_config(config_dir))
    with torch.no_grad():
        for parameter in vae.parameters():
            if parameter.ndim == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    sd = {k: v.contiguous() for k, v in vae.state_dict().items()}
    if layout == "diffusers":
        save_file(sd, str(path))
        return path, sd
    config = json.loads((config_dir / "config.json").read_text())
    ldm = {}
    for piece in ldm_layout.component_pieces("vae", "", config, sd):
        value = sd[piece.sources[0]]
        ldm[piece.ldm] = (value[:, :, None, None] if piece.op == "conv1x1" else value).contiguous().clone()
    if layout == "pickle":
        torch.save({"state_dict": ldm}, path)
    else:
        save_file(ldm, str(path))
    return path, sd


def write_embedding(path: Path, widths: tuple[int, ...], vectors: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """An embedding: A1111's ``.pt`` (string_to_param), ``.safetensors`` with ``emb_params``, or for two
    widths SDXL's ``clip_l`` + ``clip_g``."""
    generator = torch.Generator().manual_seed(seed)
    made = {name: torch.randn(vectors, w, generator=generator) for name, w in zip(("clip_l", "clip_g")[:len(widths)], widths, strict=True)}
    if len(widths) == 2:
        save_file(made, str(path))
        return made
    emb = made["clip_l"]
    if path.suffix == ".pt":
        torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": emb}, "name": path.stem, "step": 100}, path)
    else:
        save_file({"emb_params": emb}, str(path))
    return {"": emb}
