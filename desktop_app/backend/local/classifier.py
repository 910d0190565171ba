"""A small classifier over noisy latents, for classifier guidance.

It sees the latent the UNet sees (x_t at timestep t, in the VAE-scaled space) and predicts one
label per head (for the built-in model: the main object's shape kind and colour). The engine uses
∇ log p(c | x_t) to steer sampling: ε̂ = ε(x_t) − s·√(1−ᾱ_t)·∇ log p(c | x_t).

Stored in a model's ``classifier/`` folder as ``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm1 = nn.GroupNorm(8, c_out)
        self.t_proj = nn.Linear(t_dim, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = nn.functional.silu(self.norm1(self.conv1(x)))
        h = h + self.t_proj(temb)[:, :, None, None]
        h = nn.functional.silu(self.norm2(self.conv2(h)))
        return h + self.skip(x)


class LatentClassifier(nn.Module):
    def __init__(self, heads: dict[str, list[str]], in_channels: int = 4, width: int = 64, t_dim: int = 128):
        super().__init__()
        self.config = {"heads": heads, "in_channels": in_channels, "width": width, "t_dim": t_dim}
        self.heads = heads
        self.t_dim = t_dim
        self.t_mlp = nn.Sequential(nn.Linear(t_dim, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.blocks = nn.ModuleList([_Block(width, width, t_dim), _Block(width, width * 2, t_dim), _Block(width * 2, width * 2, t_dim)])
        self.pool = nn.AvgPool2d(2)
        self.out = nn.ModuleDict({name: nn.Linear(width * 2, len(labels)) for name, labels in heads.items()})

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        temb = self.t_mlp(timestep_embedding(t, self.t_dim).to(x.dtype))
        h = self.stem(x)
        for i, block in enumerate(self.blocks):
            h = block(h, temb)
            if i < len(self.blocks) - 1:
                h = self.pool(h)
        features = h.mean(dim=(2, 3))
        return {name: head(features) for name, head in self.out.items()}

    def log_prob(self, x: torch.Tensor, t: torch.Tensor, target: dict[str, int]) -> torch.Tensor:
        """Σ over the targeted heads of log p(label | x_t), one value per batch item."""
        logits = self(x, t)
        total = torch.zeros(x.shape[0], device=x.device, dtype=torch.float32)
        for head, index in target.items():
            total = total + torch.log_softmax(logits[head].float(), dim=-1)[:, index]
        return total

    def target_indices(self, words: str) -> dict[str, int]:
        """Map "red circle" to {"colour": i, "shape": j}; raises ValueError for unknown words."""
        target: dict[str, int] = {}
        for word in words.split():
            for head, labels in self.heads.items():
                if word in labels:
                    target[head] = labels.index(word)
                    break
            else:
                raise ValueError(f"the classifier does not know {word!r}")
        return target

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(self.config, indent=2))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))

    @classmethod
    def load(cls, folder: Path) -> LatentClassifier:
        from safetensors.torch import load_file

        from desktop_app.backend.local.discovery import check_safetensors
        from desktop_app.backend.local.folder_config import check_classifier_config, read_json

        config = check_classifier_config(read_json(folder / "config.json"), folder / "config.json")
        weights = folder / "model.safetensors"
        check_safetensors(weights)
        model = cls(**config)
        model.load_state_dict(load_file(str(weights)))
        return model.eval().requires_grad_(False)
