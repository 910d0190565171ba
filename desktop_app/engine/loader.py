"""Loading a model folder into a diffusers pipeline, offline, on the chosen device."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from desktop_app.engine.classifier import LatentClassifier
from desktop_app.engine.device import Placement
from desktop_app.engine.models import ModelInfo, ModelLoadError, inspect_model

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
    pipe: object  # a diffusers StableDiffusionPipeline or StableDiffusionXLPipeline
    classifier: LatentClassifier | None
    placement: Placement


def _load_pipeline(info: ModelInfo, placement: Placement):
    import diffusers

    quiet_libraries()
    cls = getattr(diffusers, info.pipeline_class)
    kwargs = {"local_files_only": True, "torch_dtype": placement.dtype}
    if info.pipeline_class == "StableDiffusionPipeline":
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch_dtype → dtype rename
        pipe = cls.from_pretrained(str(info.path), **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(placement.device)


def load_model(info: ModelInfo, placement: Placement) -> LoadedModel:
    """Load ``info`` (checking its files again first); raises ModelLoadError naming the bad file."""
    info = inspect_model(info.path, info.id)  # the folder may have changed since discovery
    try:
        pipe = _load_pipeline(info, placement)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, EnvironmentError) as exc:
        raise ModelLoadError(info.path, f"could not be loaded: {exc}") from exc
    classifier = None
    folder = Path(info.path) / "classifier"
    if (folder / "config.json").exists():
        try:
            classifier = LatentClassifier.load(folder).to(placement.device)
        except ModelLoadError:
            raise
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelLoadError(folder, f"the classifier could not be loaded: {exc}") from exc
    return LoadedModel(info, pipe, classifier, placement)


class ModelCache:
    """Keeps the most recently used pipeline loaded (one at a time: models are large)."""

    def __init__(self) -> None:
        self._loaded: LoadedModel | None = None

    def get(self, info: ModelInfo, placement: Placement) -> LoadedModel:
        current = self._loaded
        if current and current.info.path == info.path and current.placement == placement:
            return current
        self.clear()
        self._loaded = load_model(info, placement)
        return self._loaded

    def put(self, loaded: LoadedModel) -> None:
        self.clear()
        self._loaded = loaded

    def clear(self) -> None:
        self._loaded = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
