"""Model folders built from architecture configs with random weights.

Speed does not depend on weight values, so benchmarks build Stable Diffusion architectures this
way, and the tests build tiny ones: nothing is downloaded. The tokenizer is a real CLIP BPE
tokenizer trained on a small local word list and saved as ordinary tokenizer files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from desktop_app.core import paths

WORDS = (
    "a an the of and with on in at to big small red green blue yellow white black orange purple pink "
    "cat dog house tree car boat sky sea mountain city forest flower portrait photo painting of highly "
    "detailed sunset night morning river lake castle robot bird horse person woman man child beautiful "
    "circle square triangle star ring heart left right top bottom centre corner background"
).split()

def write_tokenizer(folder: Path, words=WORDS, max_length: int = 77) -> None:
    """Train a small CLIP-style BPE on ``words`` and save it as CLIPTokenizer files."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    special = ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    trainer = trainers.BpeTrainer(vocab_size=10_000, min_frequency=1, special_tokens=special,
                                  initial_alphabet=alphabet, end_of_word_suffix="</w>", show_progress=False)
    corpus = list(words) + [" ".join(words)] + alphabet
    tokenizer.train_from_iterator(corpus, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    vocab = dict(model["vocab"])
    for ch in alphabet:  # every character also as a word end, so any word can be spelled
        vocab.setdefault(ch + "</w>", len(vocab))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "bos_token": special[0],
        "eos_token": special[1], "unk_token": special[1], "pad_token": special[1], "do_lower_case": True,
    }, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": special[0], "eos_token": special[1], "unk_token": special[1], "pad_token": special[1]}, indent=2))


def _component_classes():
    import diffusers
    import transformers

    return {"diffusers": diffusers, "transformers": transformers}


def materialize(arch: str, folder: Path | str, *, weights: bool = True, seed: int = 0, name: str | None = None,
                inpainting: bool = False, refiner: bool = False) -> Path:
    """Write the model folder for ``arch`` (a folder of ``resources/architectures``).

    Tokenizers are trained on a small local word list; with ``weights`` every network is
    initialised at random (seeded) and saved. ``inpainting``: the same architecture as an
    inpainting model (a 9-channel UNet: latents, mask, masked picture's latents); ``refiner``: an
    SDXL architecture as a refiner (the second text encoder only, an aesthetic score instead of
    the target size in the time ids). The folder is
    written next to its final place and renamed into it, so a crash never leaves half a model.
    """
    import torch

    source = paths.resource_path("architectures", arch)
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    shutil.copytree(source, tmp, dirs_exist_ok=True)
    if inpainting:
        _as_inpainting(tmp)
    if refiner:
        _as_refiner(tmp)
    index = json.loads((tmp / "model_index.json").read_text())
    libraries = _component_classes()
    torch.manual_seed(seed)
    for component, (library, class_name) in _components(index):
        target = tmp / component
        if class_name == "CLIPTokenizer":
            write_tokenizer(target)
            continue
        if not weights or library is None:
            continue
        if class_name.endswith("Scheduler"):
            continue
        _network(getattr(libraries[library], class_name), library, target, tmp).save_pretrained(target)
    if name:
        (tmp / "diffuse_studio.json").write_text(json.dumps({"name": name}))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def _as_inpainting(folder: Path) -> None:
    index_file, unet_file = folder / "model_index.json", folder / "unet" / "config.json"
    index, unet = json.loads(index_file.read_text()), json.loads(unet_file.read_text())
    index["_class_name"] = "StableDiffusionXLInpaintPipeline" if "XL" in index["_class_name"] else "StableDiffusionInpaintPipeline"
    unet["in_channels"] = 4 + 1 + 4
    index_file.write_text(json.dumps(index, indent=2))
    unet_file.write_text(json.dumps(unet, indent=2))


def _as_refiner(folder: Path) -> None:
    index_file, unet_file = folder / "model_index.json", folder / "unet" / "config.json"
    index, unet = json.loads(index_file.read_text()), json.loads(unet_file.read_text())
    encoder = json.loads((folder / "text_encoder_2" / "config.json").read_text())
    index.update(_class_name="StableDiffusionXLImg2ImgPipeline", text_encoder=[None, None], tokenizer=[None, None],
                 requires_aesthetics_score=True, force_zeros_for_empty_prompt=False)
    unet["cross_attention_dim"] = encoder["hidden_size"]
    unet["projection_class_embeddings_input_dim"] = 5 * unet["addition_time_embed_dim"] + encoder["projection_dim"]
    index_file.write_text(json.dumps(index, indent=2))
    unet_file.write_text(json.dumps(unet, indent=2))
    shutil.rmtree(folder / "text_encoder", ignore_errors=True)
    shutil.rmtree(folder / "tokenizer", ignore_errors=True)


def _components(index: dict):
    """The (name, (library, class)) pairs of a model_index, tokenizers first."""
    found = [(k, v) for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0] is not None]
    return sorted(found, key=lambda item: item[1][1] != "CLIPTokenizer")


def _network(cls, library: str, target: Path, folder: Path):
    """A network of class ``cls`` with random weights, from its config in ``target``."""
    if library == "transformers":
        config = json.loads((target / "config.json").read_text())
        config.update(_token_ids(folder))
        return cls(transformers_config(config))
    return cls.from_config(cls.load_config(target))


def _token_ids(folder: Path) -> dict:
    tokenizer = folder / "tokenizer" if (folder / "tokenizer").is_dir() else folder / "tokenizer_2"  # a refiner has only the second
    special = json.loads((tokenizer / "vocab.json").read_text())
    return {"bos_token_id": special["<|startoftext|>"], "eos_token_id": special["<|endoftext|>"],
            "pad_token_id": special["<|endoftext|>"]}


def transformers_config(config: dict):
    from transformers import CLIPTextConfig

    config = {k: v for k, v in config.items() if k not in ("architectures", "model_type")}
    return CLIPTextConfig(**config)


def random_pipeline(arch: str, device, dtype, folder: Path | str):
    """(ModelInfo, pipeline) for ``arch`` with random weights made on ``device``, nothing saved.

    Speed does not depend on the weight values, so this is how the GPU benchmarks build Stable
    Diffusion 1.5 and SDXL without downloading them.
    """
    import diffusers
    import torch

    from desktop_app.backend.local.discovery import inspect_model
    from desktop_app.backend.local.loader import quiet_libraries

    quiet_libraries()
    folder = materialize(arch, folder, weights=False)
    index = json.loads((folder / "model_index.json").read_text())
    libraries = _component_classes()
    parts = {}
    for component, (library, class_name) in _components(index):
        cls = getattr(libraries[library], class_name)
        target = folder / component
        if class_name == "CLIPTokenizer":
            parts[component] = cls.from_pretrained(target)
        elif class_name.endswith("Scheduler"):  # its tables stay on the CPU, as a loaded one's do
            parts[component] = cls.from_config(cls.load_config(target))
        else:
            with torch.device(device):  # the weights are made where they run ("meta": not at all)
                parts[component] = _network(cls, library, target, folder).to(dtype)
    pipeline_cls = getattr(diffusers, index["_class_name"])
    if index["_class_name"] == "StableDiffusionPipeline":
        parts.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = pipeline_cls(**parts)
    pipe.set_progress_bar_config(disable=True)
    return inspect_model(folder, check_weights=False), pipe


def build_sd_folder(folder: Path | str, arch: str = "tiny-sd", *, seed: int = 0, name: str | None = None,
                    inpainting: bool = False, refiner: bool = False) -> Path:
    """A tiny model folder with random weights (for tests and trying the app without a model)."""
    return materialize(arch, folder, weights=True, seed=seed, name=name, inpainting=inpainting, refiner=refiner)

