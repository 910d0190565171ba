"""What a LoRA, an embedding or a VAE file is made for, from its safetensors header: no torch.

The family of a LoRA (MODELS.md): the input width of its ``…attn2_to_k.lora_down.weight`` (the text
width the UNet's cross-attention reads: 768 SD 1.x, 1024 SD 2.x, 2048 SDXL), else its text-encoder
keys (kohya names SDXL's two ``lora_te1_`` / ``lora_te2_``), else its ``ss_base_model_version`` or
``modelspec.architecture`` metadata. A LoRA fits a model when that width equals the model's own
cross-attention width, a rule that holds for the tiny test models as well.

An embedding's family: its vector width (768 SD 1.x, 1024 SD 2.x) or SDXL's pair ``clip_l`` +
``clip_g``. A VAE's family cannot be read from shapes (SD 1.x/2.x and SDXL VAEs have the same):
only metadata or the file name hint at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from desktop_app.backend.local.checkpoint_facts import Header, identify
from desktop_app.core.models import ModelLoadError

FAMILY_BY_CROSS_WIDTH = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}
FAMILY_BY_TEXT_WIDTH = {768: "SD 1.x", 1024: "SD 2.x"}
_TO_K = re.compile(r"attn2[._]to_k\.(lora_down|lora_A|lora\.down)\.weight$")
_TE = re.compile(r"^lora_te(\d?)_.*\.lora_down\.weight$")


def family_from_metadata(metadata: dict[str, str]) -> str | None:
    """The family kohya's ``ss_base_model_version`` or ``modelspec.architecture`` names, if any."""
    for key in ("ss_base_model_version", "modelspec.architecture"):
        value = metadata.get(key, "").lower()
        if not value:
            continue
        if "xl" in value:
            return "SDXL"
        if value.startswith(("sd_v2", "stable-diffusion-v2")):
            return "SD 2.x"
        if value.startswith(("sd_v1", "stable-diffusion-v1")):
            return "SD 1.x"
    return None


@dataclass(frozen=True)
class LoraFacts:
    path: Path
    kind: str  # "lora" | "locon" | "loha" | "lokr"
    cross_width: int | None  # the UNet cross-attention width it was trained on, when it has attn2.to_k
    text_width: int | None  # SD 1.x / 2.x text-encoder width, when it trains one
    two_text_encoders: bool  # trains SDXL's te1/te2
    stated_family: str | None  # from metadata
    has_dora: bool

    @property
    def family(self) -> str | None:
        if self.cross_width in FAMILY_BY_CROSS_WIDTH:
            return FAMILY_BY_CROSS_WIDTH[self.cross_width]
        if self.two_text_encoders:
            return "SDXL"
        return FAMILY_BY_TEXT_WIDTH.get(self.text_width) or self.stated_family


def lora_facts(header: Header) -> LoraFacts:
    role = identify(header)
    if role.role != "lora":
        raise ModelLoadError(header.path, f"is not a LoRA (it looks like {'a ' + role.role if role.role != 'unsupported' else 'something else'})")
    cross = {shape[1] for key, shape in header.shapes.items() if _TO_K.search(key) and len(shape) >= 2}
    text_widths, numbered = set(), False
    for key, shape in header.shapes.items():
        match = _TE.match(key)
        if match:
            numbered = numbered or bool(match.group(1))
            if not match.group(1) and len(shape) >= 2:
                text_widths.add(shape[1])
    text_width = max(text_widths) if len(text_widths) == 1 else None
    return LoraFacts(header.path, role.detail, cross.pop() if len(cross) == 1 else None, text_width, numbered,
                     family_from_metadata(header.metadata), any(k.endswith("dora_scale") for k in header.shapes))


def _family_words(family: str | None, width: int | None) -> str:
    if family and width:
        return f"{family} (cross-attention width {width})"
    return family or (f"another model (cross-attention width {width})" if width else "another model")


def check_lora_fits(facts: LoraFacts, model_family: str, model_cross_width: int) -> None:
    """ModelLoadError, naming the file, when a LoRA cannot be used on this model."""
    path = facts.path
    if facts.kind in ("loha", "lokr"):
        name = {"loha": "LoHa", "lokr": "LoKr"}[facts.kind]
        raise ModelLoadError(path, f"is a LyCORIS {name}; only LoRA and LoCon files can be used")
    model = f"{model_family} ({model_cross_width})"
    if facts.cross_width is not None:
        if facts.cross_width != model_cross_width:
            raise ModelLoadError(path, f"is a LoRA for {_family_words(facts.family, facts.cross_width)}; "
                                       f"the model is {model}")
        return
    if facts.family and facts.family != model_family:
        raise ModelLoadError(path, f"is a LoRA for {facts.family}; the model is {model_family}")


@dataclass(frozen=True)
class EmbeddingFacts:
    path: Path
    widths: dict[str, int]  # "" for a single-encoder file, else "clip_l" / "clip_g"
    vectors: int

    @property
    def family(self) -> str | None:
        if set(self.widths) == {"clip_l", "clip_g"}:
            return "SDXL"
        return FAMILY_BY_TEXT_WIDTH.get(self.widths.get(""))


def embedding_facts_from_shapes(path: Path, shapes: dict[str, tuple[int, ...]]) -> EmbeddingFacts:
    """Facts from the tensors of an embedding file (a safetensors header, or a loaded ``.pt``)."""
    if "clip_l" in shapes and "clip_g" in shapes:
        widths = {"clip_l": shapes["clip_l"][-1], "clip_g": shapes["clip_g"][-1]}
        return EmbeddingFacts(path, widths, shapes["clip_l"][0] if len(shapes["clip_l"]) > 1 else 1)
    vectors = [s for s in shapes.values() if len(s) in (1, 2)]
    if len(vectors) != 1:
        raise ModelLoadError(path, "is not a textual-inversion embedding (expected one set of vectors)")
    shape = vectors[0]
    return EmbeddingFacts(path, {"": shape[-1]}, shape[0] if len(shape) == 2 else 1)


def check_embedding_fits(facts: EmbeddingFacts, model_family: str, text_widths: tuple[int, ...]) -> None:
    path = facts.path
    if len(text_widths) == 2:
        wanted = {"clip_l": text_widths[0], "clip_g": text_widths[1]}
        if facts.widths == wanted:
            return
    elif facts.widths == {"": text_widths[0]}:
        return
    have = " + ".join(str(w) for w in facts.widths.values())
    family = facts.family or "another model"
    widths = " + ".join(str(w) for w in text_widths)
    raise ModelLoadError(path, f"is an embedding for {family} ({have} wide); the model is {model_family} ({widths})")


def vae_family_hint(path: Path, metadata: dict[str, str]) -> str | None:
    """What a VAE file says of its family: its metadata, else its name ("sdxl" / "xl" as a word)."""
    stated = family_from_metadata(metadata)
    if stated:
        return stated
    if re.search(r"(^|[^a-z])(sd)?xl([^a-z]|$)", Path(path).stem.lower()):
        return "SDXL"
    return None
