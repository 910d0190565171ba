"""A job's add-ons, resolved before anything is loaded: names to files, families checked, hashes.

When a job is resolved, the prompt's ``<lora:name:weight>`` tags join the recipe's add-ons
(``core.prompt_add_ons``), and every embedding whose name the prompt uses as a word (as A1111 does)
joins them too. Each add-on is found by name among the catalog's (a file path works as well), and
a LoRA or embedding made for another family is refused by name, from its header, before the
checkpoint or the add-on is loaded. An embedding the prompt only mentions but that does not fit
the model is left out with a warning (the word may just be a word).

Then, with the add-ons applied, their A1111 hashes ("Lora hashes", "TI hashes") are looked up or
computed (LoRAs and embeddings are small; the cache keeps them by path, size and mtime).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app.backend.local import add_on_facts, checkpoint_facts, hashes, model_files
from desktop_app.backend.local.add_ons import embeddings_in_prompt
from desktop_app.core.models import ADD_ON_LABELS, ModelCatalog, ModelInfo, ModelLoadError
from desktop_app.core.prompt_add_ons import ignored_tags, replace_add_ons, tag_problems, with_prompt_add_ons
from desktop_app.core.recipe import AddOn, Recipe

ResolveFile = Callable[[str, str], Path]


class AddOnError(ModelLoadError):
    """A LoRA, VAE or embedding that cannot be used with the job's model (``path``: its file or name)."""

    @classmethod
    def of(cls, error: ModelLoadError) -> AddOnError:
        return error if isinstance(error, AddOnError) else cls(error.path, error.problem)


@dataclass
class JobAddOns:
    recipe: Recipe  # with the prompt's LoRAs and the embeddings it uses among its add-ons
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # tags that cannot be read


def file_resolver(catalog: ModelCatalog) -> ResolveFile:
    """(kind, name) → the file: by name in the catalog, else a path to an existing file."""

    def resolve(kind: str, name: str) -> Path:
        found = catalog.find_add_on(kind, name)
        if found is not None:
            return Path(found.path)
        candidate = Path(name).expanduser()
        if candidate.suffix and candidate.is_file():
            return candidate
        known = ", ".join(a.name for a in catalog.add_ons_of(kind)) or "none"
        raise ModelLoadError(name, f"no {ADD_ON_LABELS.get(kind, kind)} of this name was found in the model folders "
                                   f"(known: {known}); see `diffuse-studio models`")

    return resolve


def _widths(info: ModelInfo) -> tuple[int | None, tuple[int, ...]]:
    """(the UNet's cross-attention width, the text encoders' widths) of a model, from its files."""
    path = Path(info.path)
    if path.is_file():
        try:
            facts = model_files.header_and_facts(path)[1]
        except ModelLoadError:
            return None, ()
        return facts.cross_attention_width, facts.text_widths

    def config(component: str) -> dict:
        try:
            return json.loads((path / component / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    texts = tuple(w for w in (config(c).get("hidden_size") for c in ("text_encoder", "text_encoder_2")) if w)
    return config("unet").get("cross_attention_dim"), texts


def _header(path: Path):
    if path.suffix.lower() != ".safetensors":
        return None  # a pickle tells its shapes only once loaded: checked when it is applied
    return checkpoint_facts.read_header(path)


def check_fits(kind: str, path: Path, info: ModelInfo) -> None:
    """ModelLoadError, naming the file, for a LoRA or embedding of another family than ``info``'s."""
    header = _header(path)
    if header is None:
        return
    cross, texts = _widths(info)
    if kind == "lora" and cross:
        add_on_facts.check_lora_fits(add_on_facts.lora_facts(header), info.family, cross)
    elif kind == "embedding" and texts:
        found = add_on_facts.embedding_facts_from_shapes(path, header.shapes)
        add_on_facts.check_embedding_fits(found, info.family, texts)


def resolve_job_add_ons(recipe: Recipe, info: ModelInfo, catalog: ModelCatalog) -> JobAddOns:
    """The recipe with all its add-ons, checked (ModelLoadError names the file at fault)."""
    recipe = with_prompt_add_ons(recipe)
    job = JobAddOns(recipe, list(ignored_tags(recipe.prompt.text)), list(tag_problems(recipe.prompt.text)))
    resolve = file_resolver(catalog)
    for add_on in recipe.model.add_ons:
        path = resolve(add_on.kind, add_on.name)
        if add_on.kind in ("lora", "embedding"):
            check_fits(add_on.kind, path, info)
    chosen = {a.name for a in recipe.model.add_ons if a.kind == "embedding"}
    names = [a.name for a in catalog.add_ons_of("embedding") if a.name not in chosen]
    used = embeddings_in_prompt(f"{recipe.prompt.text}\n{recipe.prompt.negative}", names)
    implicit = []
    for name in used:
        path = resolve("embedding", name)
        try:
            check_fits("embedding", path, info)
        except ModelLoadError as exc:
            job.warnings.append(f"{name} was not used as an embedding: {exc}")
            continue
        implicit.append(AddOn("embedding", name))
    if implicit:
        explicit = tuple(a for a in recipe.model.add_ons if a.kind == "embedding")
        job.recipe = replace_add_ons(recipe, "embedding", explicit + tuple(implicit))
    return job


def add_on_hashes(recipe: Recipe, resolve: ResolveFile, cache: hashes.HashCache | None = None
                  ) -> tuple[dict[str, str], dict[str, str]]:
    """({LoRA name: short hash}, {embedding name: short hash}), as A1111 writes them."""
    cache = cache or hashes.HashCache()
    loras, embeddings = {}, {}
    for add_on in recipe.model.add_ons:
        if add_on.kind not in ("lora", "embedding"):
            continue
        path = resolve(add_on.kind, add_on.name)
        try:
            sha = hashes.cached_or_compute(path, hashes.hash_kind(path, add_on.kind), cache)
        except OSError:
            continue
        (loras if add_on.kind == "lora" else embeddings)[add_on.name] = hashes.short_hash(sha)
    return loras, embeddings
