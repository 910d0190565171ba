"""A prompt's ``<lora:name:weight>`` tags and a recipe's add-ons, kept in step.

The prompt keeps its tags as the user wrote them (they are what the user sees, and what other tools
read back from an image). When a job is resolved, the tags join the recipe's add-ons
(``with_prompt_add_ons``); the text encoder never sees them (the prompt parser takes them out).
Written into an A1111 text, a LoRA add-on the prompt does not carry as a tag is added as one
(``prompt_with_tags``), so A1111 and this app restore the same LoRAs from it. Torch-free.
"""

from __future__ import annotations

import dataclasses
import re

from desktop_app.core.prompt_syntax import extract_networks, format_tag
from desktop_app.core.recipe import AddOn, Recipe

LORA_TAGS = ("lora", "lyco")  # A1111 reads LyCORIS files under either tag


def tag_add_ons(text: str) -> tuple[AddOn, ...]:
    """The LoRAs a prompt's tags ask for, in order; a name tagged twice counts once, the last weight."""
    _rest, networks, _problems = extract_networks(text)
    found: dict[str, AddOn] = {}
    for network in networks:
        if network.kind in LORA_TAGS:
            found.pop(network.name, None)
            found[network.name] = AddOn("lora", network.name, network.weight)
    return tuple(found.values())


def tag_problems(text: str) -> tuple[str, ...]:
    """Tags that cannot be read (``<lora:x:abc>``)."""
    return extract_networks(text)[2]


def ignored_tags(text: str) -> tuple[str, ...]:
    """Warnings for tags of kinds the app does not run (``<hypernet:…>``): they are left out."""
    return tuple(f"{n.tag}: {n.kind} networks are not supported; the tag was ignored"
                 for n in extract_networks(text)[1] if n.kind not in LORA_TAGS)


def with_prompt_add_ons(recipe: Recipe) -> Recipe:
    """The recipe with its prompt's LoRA tags among its add-ons. A tag replaces an add-on of the same
    name (the prompt is what the user sees); the other add-ons keep their order; the prompt's text is
    unchanged. Resolving twice gives the same recipe."""
    tagged = tag_add_ons(recipe.prompt.text)
    if not tagged:
        return recipe
    names = {a.name for a in tagged}
    kept = tuple(a for a in recipe.model.add_ons if not (a.kind == "lora" and a.name in names))
    return recipe.with_(add_ons=kept + tagged)


def uses_word(text: str, name: str) -> bool:
    """Whether ``name`` is a word of its own in ``text`` (how A1111 finds an embedding in a prompt)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def without_prompt_add_ons(recipe: Recipe) -> Recipe:
    """The inverse, for showing a resolved recipe: the add-ons its prompt gives again go (LoRAs its
    tags name, embeddings it uses as words), so editing the prompt is all it takes to change them."""
    names = {a.name for a in tag_add_ons(recipe.prompt.text)}
    words = f"{recipe.prompt.text}\n{recipe.prompt.negative}"

    def given_again(add_on: AddOn) -> bool:
        return (add_on.kind == "lora" and add_on.name in names) or (add_on.kind == "embedding" and uses_word(words, add_on.name))

    kept = tuple(a for a in recipe.model.add_ons if not given_again(a))
    return recipe if kept == recipe.model.add_ons else recipe.with_(add_ons=kept)


def prompt_with_tags(recipe: Recipe) -> str:
    """The prompt as an A1111 text carries it: as written, then a tag for each LoRA add-on it lacks."""
    text = recipe.prompt.text
    tagged = {a.name for a in tag_add_ons(text)}
    missing = [a for a in recipe.model.add_ons if a.kind == "lora" and a.name not in tagged]
    if not missing:
        return text
    tags = " ".join(format_tag("lora", a.name, float(a.weight)) for a in missing)
    return f"{text} {tags}" if text else tags


def explicit_add_ons(recipe: Recipe, kind: str) -> tuple[AddOn, ...]:
    return tuple(a for a in recipe.model.add_ons if a.kind == kind)


def replace_add_ons(recipe: Recipe, kind: str, add_ons: tuple[AddOn, ...]) -> Recipe:
    """The recipe with its add-ons of ``kind`` replaced by ``add_ons`` (appended after the others)."""
    others = tuple(a for a in recipe.model.add_ons if a.kind != kind)
    return dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, add_ons=others + tuple(add_ons)))
