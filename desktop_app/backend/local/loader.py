"""Loading a model folder into a diffusers pipeline, offline, on the chosen device."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app.backend.local.classifier import LatentClassifier
from desktop_app.backend.local.device import Placement
from desktop_app.backend.local.discovery import inspect_model
from desktop_app.backend.local.load_errors import load_failure
from desktop_app.backend.local.performance import (
    CompileSettings,
    FastUNet,
    enable_low_vram,
    free_device_memory,
    out_of_memory,
)
from desktop_app.core.models import ModelInfo, ModelLoadError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


def quiet_libraries() -> None:
    """Keep diffusers' and transformers' progress bars and advice out of the user's terminal."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


@dataclass
class LoadedModel:
    info: ModelInfo
    pipe: object  # a diffusers Stable Diffusion (XL) pipeline
    classifier: LatentClassifier | None
    placement: Placement
    config_dir: Path | None = None  # a diffusers-layout folder with the model's configs (for a VAE file)
    fast: FastUNet | None = None  # fast mode's compiled UNet, when it is on
    low_vram: bool = False
    fast_failed: bool = False  # the compiled UNet failed once: this model stays on the normal path
    pending_notes: list[str] = field(default_factory=list)  # told with the next result
    carries_add_ons: bool = False  # add-ons were applied to the pipeline (and may still be on it)
    vae_file: Path | None = None  # the VAE a checkpoint file without one was loaded with (its own now)

    def apply_add_ons(self, add_ons, resolve_file) -> list[str]:
        """Make the pipeline carry exactly ``add_ons`` (switched in place, never reloaded); notes for
        the user. A model that never had any is not touched."""
        add_ons = list(add_ons)
        if not add_ons and not self.carries_add_ons:
            return []
        from desktop_app.backend.local.add_ons import apply_add_ons

        if self.vae_file is not None:  # the VAE it was loaded with is its own: not loaded twice
            add_ons = [a for a in add_ons if not (a.kind == "vae" and Path(resolve_file("vae", a.name)) == self.vae_file)]
        self.carries_add_ons = True
        notes = apply_add_ons(self.pipe, self.info.family, add_ons, resolve_file, self.config_dir or Path(self.info.path))
        self.carries_add_ons = bool(add_ons)
        return notes

    def enable_fast(self, backend="inductor") -> None:
        if self.fast is None:
            self.fast = FastUNet(self.pipe.unet, self.placement.device, backend)

    def disable_fast(self) -> None:
        if self.fast is not None:
            fast, self.fast = self.fast, None
            fast.undo()

    def enable_low_vram(self) -> list[str]:
        self.disable_fast()  # compiled graphs keep their own memory pools
        if self.low_vram:
            return []
        self.low_vram = True
        return enable_low_vram(self.pipe, self.placement.device)

    def apply_fast(self, wanted: bool, compile: CompileSettings) -> None:
        """Fast mode on or off for the next job, where it applies (never with low-VRAM mode)."""
        if wanted and self.placement.device.type in compile.devices and not self.low_vram and not self.fast_failed:
            self.enable_fast(compile.backend)
        elif not wanted:
            self.disable_fast()

    def weight_bytes(self) -> int:
        """Bytes of every network's parameters and buffers (what the model costs in memory)."""
        total = 0
        for part in (getattr(self.pipe, name, None) for name in ("unet", "vae", "text_encoder", "text_encoder_2")):
            if part is not None:
                total += sum(t.numel() * t.element_size() for t in (*part.parameters(), *part.buffers()))
        return total


def _load_pipeline(info: ModelInfo, placement: Placement):
    import diffusers

    quiet_libraries()
    cls = getattr(diffusers, info.pipeline_class)
    kwargs = {"local_files_only": True, "torch_dtype": placement.dtype}
    if "XL" not in info.pipeline_class:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch_dtype → dtype rename
        pipe = cls.from_pretrained(str(info.path), **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_file(info: ModelInfo, placement: Placement, vae_file: Path | None) -> LoadedModel:
    """A single-file checkpoint, loaded offline on the CPU (its checks included), not placed yet.

    A file without a VAE takes ``vae_file`` as its own; the user's ε/v answer for an SD 2.x file that
    does not say is used; otherwise ``PredictionTypeUnknown`` asks for it."""
    from desktop_app.backend.local import add_ons, checkpoint_facts, checkpoints, model_files, pickles

    path = Path(info.path)
    quiet_libraries()
    if path.suffix.lower() in checkpoint_facts.PICKLE_SUFFIXES:
        pickles.safetensors_copy(path)  # converted once, safely; named errors for a hostile file
    header, facts = model_files.header_and_facts(path)
    arch = checkpoints.match_architecture(header, facts)
    config_dir = checkpoints.architectures_dir() / arch
    vae = None
    if not facts.has_vae:
        if vae_file is None:
            raise checkpoint_facts.no_vae_error(path)
        vae = add_ons.load_vae_file(Path(vae_file), config_dir, dtype=placement.dtype)
    loaded = checkpoints.load_checkpoint(path, dtype=placement.dtype, vae=vae,
                                         prediction=checkpoint_facts.remembered_prediction(path))
    return LoadedModel(info, loaded.pipe, None, placement, config_dir=config_dir,
                       vae_file=Path(vae_file) if vae is not None else None)


def load_model(info: ModelInfo, placement: Placement, *, low_vram: bool = False,
               vae_file: Path | None = None) -> LoadedModel:
    """Load ``info`` (checking its files again first); raises ModelLoadError naming the bad file.
    ``vae_file``: the VAE of a checkpoint file that has none inside."""
    if Path(info.path).is_file():
        try:
            return place(_load_file(info, placement, vae_file), low_vram=low_vram)
        except ModelLoadError:
            raise
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise ModelLoadError(info.path, f"could not be loaded: {str(exc).splitlines()[0][:200]}") from exc
    info = inspect_model(info.path, info.id)  # the folder may have changed since discovery
    try:
        pipe = _load_pipeline(info, placement)
        from desktop_app.backend.local.checkpoints import check_filled

        check_filled(pipe, info.path)
    except ModelLoadError:
        raise
    except Exception as exc:  # the libraries' advice is for programmers: never shown as it is
        if out_of_memory(exc):
            raise
        raise load_failure(exc, info.path) from exc
    classifier = None
    folder = Path(info.path) / "classifier"
    if (folder / "config.json").exists():
        try:
            classifier = LatentClassifier.load(folder).to(placement.device)
        except ModelLoadError:
            raise
        except Exception as exc:
            if out_of_memory(exc):
                raise
            raise load_failure(exc, folder) from exc
    return place(LoadedModel(info, pipe, classifier, placement, config_dir=Path(info.path)), low_vram=low_vram)


def place(loaded: LoadedModel, *, low_vram: bool = False) -> LoadedModel:
    """Put a freshly built pipeline on its device: offloaded in low-VRAM mode, else moved."""
    if low_vram:
        loaded.enable_low_vram()
    else:
        _move_or_offload(loaded)
    return loaded


def _move_or_offload(loaded: LoadedModel) -> None:
    """Put the pipeline on its device; a model that does not fit is offloaded instead of failing."""
    try:
        loaded.pipe.to(loaded.placement.device)
        return
    except Exception as exc:
        if not out_of_memory(exc):
            raise ModelLoadError(loaded.info.path, f"could not be moved to {loaded.placement.device}: {exc}") from exc
    loaded.pipe.to("cpu")
    free_device_memory()
    if loaded.placement.device.type != "cuda":  # offloading between CPU and GPU is a CUDA feature
        raise ModelLoadError(loaded.info.path, f"does not fit in the memory of {loaded.placement.device}; "
                                               "use the CPU, or a smaller model")
    changes = loaded.enable_low_vram()
    loaded.pending_notes.append(f"{loaded.info.name} does not fit in the GPU's memory, so low-VRAM mode is on for it: "
                                + "; ".join(changes) + ". It is slower but works.")
