"""What timings were measured on: the one description every RTF is printed with (generation.json, figures)."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path


def hardware(threads: int) -> dict:
    """cpu model, cores, torch threads and device of this process."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return dict(cpu=cpu, cores=os.cpu_count(), torch_threads=threads or torch.get_num_threads(), device=device)


def hardware_text(hardware: Mapping | str | None) -> str:
    """A `hardware` dict (or an already written string) as one line."""
    if isinstance(hardware, Mapping):
        return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in hardware.items())
    return str(hardware or "unknown hardware")
