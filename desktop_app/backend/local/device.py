"""Choosing the device and the precision: CUDA in fp16, Apple MPS, or the CPU in fp32."""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class DeviceError(RuntimeError):
    pass


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype

    @property
    def precision(self) -> str:
        return {v: k for k, v in _DTYPES.items()}[self.dtype]

    def describe(self) -> str:
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
            return f"CUDA ({name}), {self.precision}"
        return f"{self.device.type.upper()}, {self.precision}"


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def accelerators() -> tuple[str, ...]:
    """The GPU kinds this PyTorch build can run on here (empty on a CPU-only machine or build)."""
    return tuple(kind for kind, there in (("cuda", torch.cuda.is_available()), ("mps", mps_available())) if there)


def choose(device: str = "auto", precision: str = "auto") -> Placement:
    """The device and dtype to run on; raises DeviceError for a choice this machine cannot honour."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was asked for but this PyTorch build sees no CUDA GPU; choose cpu, or install a CUDA build of torch")
    if device == "mps" and not mps_available():
        raise DeviceError("Apple MPS was asked for but is not available on this machine; choose cpu")
    if precision == "auto":
        precision = "fp16" if device in ("cuda", "mps") else "fp32"
    if device == "cpu" and precision == "fp16":
        raise DeviceError("fp16 on the CPU is very slow and unsupported by some layers; use fp32 or bf16 on the CPU")
    if precision == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError("this GPU does not support bf16; use fp16")
    return Placement(torch.device(device), _DTYPES[precision])
