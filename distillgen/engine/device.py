"""`--device auto|cpu|cuda[:N]` to a torch device, with an error an author can act on."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    pass


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{name}' was asked for but this machine has no CUDA GPU")
        if (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"no GPU '{name}': this machine has {torch.cuda.device_count()}")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device '{name}'; use auto, cpu, cuda or cuda:N")
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def memory_budget(device: torch.device) -> float:
    """Bytes one batch may use: a quarter of the GPU's free memory, or 2 GiB of RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / 4
    return 2 * 1024**3
