"""Reading the JSON files of a model folder, with every value the app uses checked first.

A model folder is the user's (downloaded, copied, edited by hand), so any value may be missing,
of the wrong type or out of range. Each check here raises ``ModelLoadError`` naming the file and
the field, so discovery can report that one folder and keep listing the others, and nothing later
(the recipe's step range, the scheduler, the classifier, the window's controls) meets a value it
cannot use. Torch-free: discovery runs these without loading anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from desktop_app.core.models import ModelLoadError

_TYPE_NAMES = {int: "a whole number", float: "a number", str: "text", list: "a list", dict: "an object", bool: "true or false"}
_MISSING = object()


def shown(value: Any) -> str:
    """A value as it looks in the JSON file (shortened)."""
    try:
        return json.dumps(value)[:60]
    except (TypeError, ValueError):
        return repr(value)[:60]


def read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelLoadError(path, "file is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is not UTF-8 text"
        raise ModelLoadError(path, f"cannot be read ({reason})") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ModelLoadError(path, f"is not valid JSON{where}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(path, "should hold a JSON object")
    return data


def field(data: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path, default: Any = None) -> Any:
    """``data[key]`` if it has the right type (bools never count as numbers), else a ModelLoadError
    naming the file and the field; ``default`` when the key is absent."""
    if key not in data:
        return default
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if not ok:
        names = " or ".join(dict.fromkeys(_TYPE_NAMES.get(k, k.__name__) for k in kinds))
        raise ModelLoadError(path, f"field {key!r} should be {names}, not {shown(value)}")
    return value


def whole(data: dict[str, Any], key: str, path: Path, default: Any, low: int, high: int) -> Any:
    """A whole number from ``low`` to ``high`` (``default`` when absent)."""
    value = data.get(key, _MISSING)
    if value is _MISSING:
        return default
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise ModelLoadError(path, f"field {key!r} should be a whole number from {low} to {high}, not {shown(value)}")
    return value


def number(data: dict[str, Any], key: str, path: Path, default: Any, low: float, high: float,
           *, above_low: bool = False) -> Any:
    """A finite number from ``low`` to ``high`` (strictly above ``low`` with ``above_low``)."""
    value = data.get(key, _MISSING)
    if value is _MISSING:
        return default
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if above_low else value >= low) and value <= high
    if not ok:
        what = f"a number above {low:g}" if above_low and high == math.inf else f"a number from {low:g} to {high:g}"
        raise ModelLoadError(path, f"field {key!r} should be {what}, not {shown(value)}")
    return value


def one_of(data: dict[str, Any], key: str, path: Path, default: Any, choices: tuple[str, ...]) -> Any:
    value = data.get(key, _MISSING)
    if value is _MISSING:
        return default
    if not isinstance(value, str) or value not in choices:
        raise ModelLoadError(path, f"field {key!r} should be one of {', '.join(choices)}, not {shown(value)}")
    return value


def flag(data: dict[str, Any], key: str, path: Path, default: bool = False) -> bool:
    return field(data, key, bool, path, default)


def positive_ints(values: Any, key: str, path: Path) -> list[int]:
    if not isinstance(values, list) or not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                             for v in values):
        raise ModelLoadError(path, f"field {key!r} should be a list of positive whole numbers, not {shown(values)}")
    return values


# ---- the files diffusers reads, where the app reads them too ---------------------------------------

MAX_TIMESTEPS = 100_000
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
TIMESTEP_SPACINGS = ("leading", "linspace", "trailing")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def check_scheduler_config(config: dict[str, Any], path: Path) -> dict[str, Any]:
    """The values of ``scheduler_config.json`` that the step range and every scheduler built from it use."""
    field(config, "_class_name", str, path)
    train = whole(config, "num_train_timesteps", path, 1000, 2, MAX_TIMESTEPS)
    whole(config, "steps_offset", path, 0, 0, train - 1)
    one_of(config, "timestep_spacing", path, "leading", TIMESTEP_SPACINGS)
    one_of(config, "beta_schedule", path, "linear", BETA_SCHEDULES)
    one_of(config, "prediction_type", path, "epsilon", PREDICTION_TYPES)
    start = number(config, "beta_start", path, 0.0001, 0, 1)
    end = number(config, "beta_end", path, 0.02, 0, 1)
    if start > end:
        raise ModelLoadError(path, f"field 'beta_start' ({start:g}) should not be above 'beta_end' ({end:g})")
    betas = config.get("trained_betas")
    if betas is not None and not (isinstance(betas, list) and betas and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) and 0 <= b <= 1 for b in betas)):
        raise ModelLoadError(path, f"field 'trained_betas' should be null or a list of numbers from 0 to 1, not {shown(betas)}")
    whole(config, "original_inference_steps", path, 50, 1, 1000)
    for name in ("skip_prk_steps", "clip_sample", "set_alpha_to_one", "thresholding", "rescale_betas_zero_snr"):
        flag(config, name, path)
    number(config, "clip_sample_range", path, 1.0, 0, math.inf, above_low=True)
    return config


CLASSIFIER_KEYS = ("heads", "in_channels", "width", "t_dim")


def check_classifier_config(config: dict[str, Any], path: Path, latent_channels: int | None = None) -> dict[str, Any]:
    """The classifier's ``config.json``, checked; returns only the keys ``LatentClassifier`` takes."""
    heads = field(config, "heads", dict, path, _MISSING)
    if heads is _MISSING or not heads:
        raise ModelLoadError(path, "field 'heads' should map each head to a list of labels")
    for head, labels in heads.items():
        if not isinstance(labels, list) or not labels or not all(isinstance(label, str) and label for label in labels):
            raise ModelLoadError(path, f"field 'heads' should map each head to a list of labels; {head!r} does not")
    channels = config.get("in_channels", 4)
    if latent_channels is not None and channels != latent_channels:
        raise ModelLoadError(path, f"field 'in_channels' should be {latent_channels} (the model's latent channels), "
                                   f"not {shown(channels)}")
    whole(config, "in_channels", path, 4, 1, 64)
    width = config.get("width", 64)
    if not (isinstance(width, int) and not isinstance(width, bool) and 8 <= width <= 1024 and width % 8 == 0):
        raise ModelLoadError(path, f"field 'width' should be a multiple of 8 from 8 to 1024, not {shown(width)}")
    t_dim = config.get("t_dim", 128)
    if not (isinstance(t_dim, int) and not isinstance(t_dim, bool) and 2 <= t_dim <= 4096 and t_dim % 2 == 0):
        raise ModelLoadError(path, f"field 't_dim' should be an even whole number from 2 to 4096, not {shown(t_dim)}")
    return {k: config[k] for k in CLASSIFIER_KEYS if k in config}


# The flat recipe fields a model may recommend in diffuse_studio.json's "defaults"
DEFAULT_KEYS = ("negative_prompt", "scheduler", "steps", "eta", "ddpm_variance", "guidance_scale", "classifier_target",
                "classifier_scale", "width", "height", "batch_size", "seed")


def check_defaults(defaults: dict[str, Any], path: Path) -> dict[str, Any]:
    """A model's recommended settings, each checked the way the recipe checks the user's own
    (unknown keys are left out: a newer version's file still lists the model)."""
    from desktop_app.core.recipe import value_problem

    known = {k: v for k, v in defaults.items() if k in DEFAULT_KEYS}
    for key, value in known.items():
        problem = value_problem(key, value)
        if problem:
            raise ModelLoadError(path, f"field 'defaults.{key}': {problem}")
    return known
