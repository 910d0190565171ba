"""LoRAs, a VAE file and textual-inversion embeddings, applied to a loaded pipeline and switched
without reloading it.

- LoRA (kohya LoRA and LoCon, SD 1.x and SDXL) goes through diffusers' ``load_lora_weights`` on the
  ``peft`` backend, one adapter per file, several at once, each with its weight (``set_adapters``).
  The family is checked from the file's header before anything is loaded; LyCORIS LoHa / LoKr are
  refused by name. A LoRA no longer asked for is deleted; with none left the LoRA layers are removed
  (``unload_lora_weights``), so the model computes exactly as before.
- A VAE file replaces the checkpoint's own VAE (kept, and put back when the choice goes back to
  automatic); it loads with ``AutoencoderKL.from_single_file(config=<the model's config folder>)``.
- Embeddings load with ``load_textual_inversion(vectors, token=<file stem>)`` (A1111 uses the file
  name in the prompt); SDXL's ``clip_l`` / ``clip_g`` pair needs one call per encoder. A change of the
  set unloads them all first, since they live in the tokenizer.

``apply_add_ons`` is what the engine calls before each job; the state of what is applied lives in a
weak map keyed by the pipeline, so a pipeline dropped from the cache takes it along.
"""

from __future__ import annotations

import re
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from desktop_app.backend.local import add_on_facts as facts
from desktop_app.backend.local import checkpoint_facts, pickles
from desktop_app.core.models import ModelLoadError
from desktop_app.core.recipe import AddOn

ResolveFile = Callable[[str, str], Path]  # (kind, name) -> the file; raises ModelLoadError if unknown


@dataclass
class _Applied:
    family: str
    config_dir: Path
    own_vae: object
    loras: dict[str, tuple[str, Path, tuple]] = field(default_factory=dict)  # name -> (adapter, path, stat)
    vae: tuple[Path, tuple] | None = None
    embeddings: tuple[tuple[str, Path, tuple], ...] = ()
    counter: int = 0


_STATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _stat(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _header(path: Path) -> checkpoint_facts.Header:
    source = pickles.safetensors_copy(path) if path.suffix.lower() in checkpoint_facts.PICKLE_SUFFIXES else path
    header = checkpoint_facts.read_header(source)
    return checkpoint_facts.Header(path, header.shapes, header.dtypes, header.metadata, header.data_start)


def text_widths(pipe) -> tuple[int, ...]:
    encoders = [getattr(pipe, n, None) for n in ("text_encoder", "text_encoder_2")]
    return tuple(e.config.hidden_size for e in encoders if e is not None)


def apply_add_ons(pipe, family: str, add_ons: Iterable[AddOn], resolve_file: ResolveFile,
                  config_dir: Path) -> list[str]:
    """Make ``pipe`` carry exactly ``add_ons`` (LoRAs with weights, at most one VAE, embeddings).

    ``family``: the model's ("SD 1.x", "SD 2.x", "SDXL"); ``config_dir``: a diffusers-layout folder with
    the model's ``vae/config.json`` (its shipped architecture, or its own folder). Returns notes for
    the user (things applied with a caveat); raises ModelLoadError naming the file at fault.
    """
    state = _STATE.get(pipe)
    if state is None:
        state = _STATE[pipe] = _Applied(family, Path(config_dir), pipe.vae)
    add_ons = list(add_ons)
    notes: list[str] = []
    notes += _apply_loras(pipe, state, [a for a in add_ons if a.kind == "lora"], resolve_file)
    vaes = [a for a in add_ons if a.kind == "vae"]
    if len(vaes) > 1:
        raise ModelLoadError(resolve_file("vae", vaes[1].name), "is a second VAE; a model takes one")
    notes += _apply_vae(pipe, state, resolve_file("vae", vaes[0].name) if vaes else None)
    _apply_embeddings(pipe, state, [(a.name, resolve_file("embedding", a.name)) for a in add_ons
                                    if a.kind == "embedding"])
    return notes


# ---- LoRA ------------------------------------------------------------------------------------------------


def _lora_source(path: Path):
    if path.suffix.lower() in checkpoint_facts.PICKLE_SUFFIXES:
        return pickles.tensors_of(pickles.safe_load(path), path)
    return str(path)


def _apply_loras(pipe, state: _Applied, wanted: list[AddOn], resolve_file: ResolveFile) -> list[str]:
    from desktop_app.backend.local.checkpoints import hub_offline

    notes: list[str] = []
    paths = {a.name: Path(resolve_file("lora", a.name)) for a in wanted}
    for name in [n for n, (_, path, stat) in state.loras.items() if n not in paths or _stat(paths[n]) != stat]:
        pipe.delete_adapters(state.loras.pop(name)[0])
    for add_on in wanted:
        if add_on.name in state.loras:
            continue
        path = paths[add_on.name]
        lora = facts.lora_facts(_header(path))
        facts.check_lora_fits(lora, state.family, pipe.unet.config.cross_attention_dim)
        if lora.has_dora:
            notes.append(f"{path.name}: its DoRA magnitudes are not used (diffusers drops them)")
        state.counter += 1
        adapter = f"lora_{state.counter}"
        try:
            with hub_offline(), warnings.catch_warnings():  # several adapters at once is the point
                warnings.filterwarnings("ignore", "Already found a `peft_config` attribute", UserWarning)
                pipe.load_lora_weights(_lora_source(path), adapter_name=adapter)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ModelLoadError(path, f"could not be applied to this model ({str(exc).splitlines()[0][:160]})") from None
        state.loras[add_on.name] = (adapter, path, _stat(path))
    if wanted:
        pipe.set_adapters([state.loras[a.name][0] for a in wanted], adapter_weights=[float(a.weight) for a in wanted])
    elif _has_lora_layers(pipe):
        pipe.unload_lora_weights()
    return notes


def _has_lora_layers(pipe) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    modules = [getattr(pipe, n, None) for n in ("unet", "text_encoder", "text_encoder_2")]
    return any(isinstance(m, BaseTunerLayer) for module in modules if module is not None for m in module.modules())


# ---- VAE -------------------------------------------------------------------------------------------------


def load_vae_file(path: Path, config_dir: Path, dtype=None, device=None):
    """An AutoencoderKL from a VAE file (LDM or diffusers names, or a pickled ``{"state_dict"}``)."""
    from diffusers import AutoencoderKL

    from desktop_app.backend.local.checkpoints import hub_offline

    header = _header(path)
    role = checkpoint_facts.identify(header).role
    if role not in ("vae", "checkpoint") or (role == "checkpoint" and not header.any_with("first_stage_model.")):
        raise ModelLoadError(path, f"is not a VAE (it looks like {'a ' + role if role != 'unsupported' else 'something else'})")
    source = pickles.safetensors_copy(path) if path.suffix.lower() in checkpoint_facts.PICKLE_SUFFIXES else path
    try:
        with hub_offline():
            vae = AutoencoderKL.from_single_file(str(source), config=str(config_dir), subfolder="vae",
                                                 local_files_only=True, torch_dtype=dtype)
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(path, f"is a VAE of another shape than this model's ({str(exc).splitlines()[0][:120]})") from None
    left = [k for k, v in vae.named_parameters() if v.is_meta]
    if left:
        raise ModelLoadError(path, f"is missing {len(left)} VAE tensors (e.g. {left[0]}); the file is incomplete")
    return vae.to(device) if device is not None else vae


def _apply_vae(pipe, state: _Applied, path: Path | None) -> list[str]:
    if path is None:
        if state.vae is not None:
            pipe.register_modules(vae=state.own_vae)
            state.vae = None
        return []
    if state.vae is not None and state.vae == (path, _stat(path)):
        return []
    notes = []
    hint = facts.vae_family_hint(path, _header(path).metadata)
    stated = facts.family_from_metadata(_header(path).metadata)
    if stated and stated != state.family and {stated, state.family} & {"SDXL"}:
        raise ModelLoadError(path, f"is a VAE for {stated}; the model is {state.family}")
    if hint and hint != state.family and {hint, state.family} & {"SDXL"}:
        notes.append(f"{path.name}: its name suggests {hint}, the model is {state.family}")
    vae = load_vae_file(path, state.config_dir, dtype=state.own_vae.dtype, device=state.own_vae.device)
    pipe.register_modules(vae=vae)
    state.vae = (path, _stat(path))
    return notes


# ---- textual inversion --------------------------------------------------------------------------------------


def embedding_vectors(path: Path) -> dict[str, torch.Tensor]:
    """An embedding's vectors: {"": [n, width]} or SDXL's {"clip_l": …, "clip_g": …}."""
    if path.suffix.lower() in checkpoint_facts.PICKLE_SUFFIXES:
        data = pickles.safe_load(path)
    else:
        from safetensors.torch import load_file

        checkpoint_facts.read_header(path)  # names a truncated / foreign file first
        data = load_file(str(path))
    if isinstance(data, dict) and isinstance(data.get("string_to_param"), dict):  # A1111's .pt
        data = {"": next(iter(data["string_to_param"].values()))}
    if not isinstance(data, dict):
        raise ModelLoadError(path, "is not a textual-inversion embedding")
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if "clip_l" in tensors and "clip_g" in tensors:
        return {"clip_l": tensors["clip_l"], "clip_g": tensors["clip_g"]}
    if len(tensors) != 1:
        raise ModelLoadError(path, "is not a textual-inversion embedding (expected one set of vectors)")
    vectors = next(iter(tensors.values()))
    return {"": vectors if vectors.ndim == 2 else vectors[None]}


def _unload_embeddings(pipe) -> None:
    pipe.unload_textual_inversion()
    if getattr(pipe, "tokenizer_2", None) is not None and getattr(pipe, "text_encoder_2", None) is not None:
        pipe.unload_textual_inversion(tokenizer=pipe.tokenizer_2, text_encoder=pipe.text_encoder_2)


def _apply_embeddings(pipe, state: _Applied, wanted: list[tuple[str, Path]]) -> None:
    key = tuple((name, path, _stat(path)) for name, path in wanted)
    if key == state.embeddings:
        return
    if state.embeddings:
        _unload_embeddings(pipe)
        state.embeddings = ()
    widths = text_widths(pipe)
    for name, path in wanted:
        vectors = embedding_vectors(path)
        found = facts.embedding_facts_from_shapes(path, {k: tuple(v.shape) for k, v in vectors.items()})
        facts.check_embedding_fits(found, state.family, widths)
        try:
            if "" in vectors:
                pipe.load_textual_inversion(vectors[""], token=name)
            else:
                pipe.load_textual_inversion(vectors["clip_l"], token=name, text_encoder=pipe.text_encoder,
                                            tokenizer=pipe.tokenizer)
                pipe.load_textual_inversion(vectors["clip_g"], token=name, text_encoder=pipe.text_encoder_2,
                                            tokenizer=pipe.tokenizer_2)
        except ValueError as exc:  # e.g. a file named like a word the tokenizer already has
            _unload_embeddings(pipe)
            raise ModelLoadError(path, f"cannot be used as the word {name!r} ({str(exc).splitlines()[0][:120]}); "
                                       "rename the file") from None
    state.embeddings = key


def embeddings_in_prompt(prompt: str, names: Iterable[str]) -> list[str]:
    """The embedding names a prompt uses, as A1111 finds them: a name written as a word of its own."""
    return [n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", prompt)]
