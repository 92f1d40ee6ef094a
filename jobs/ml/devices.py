"""What hardware this machine has, found without importing TensorFlow.

Workers advertise this on the Workers page as soon as they start; importing TensorFlow just
to list devices would cost seconds and hundreds of megabytes in a process that may never
train. `nvidia-smi` answers for GPUs when the NVIDIA driver is installed.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def nvidia_gpus() -> list[dict]:
    """[{"name", "memory_bytes"}] for each GPU nvidia-smi sees; [] without the driver."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        name, _, mib = line.rpartition(",")
        try:
            gpus.append({"name": name.strip(), "memory_bytes": int(float(mib)) * 1024 * 1024})
        except ValueError:
            gpus.append({"name": line.strip(), "memory_bytes": None})
    return gpus


def describe_machine() -> list[dict]:
    """The devices a worker can compute on: the CPU first, then each GPU."""
    devices = [{
        "type": "CPU",
        "name": cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": memory_bytes(),
    }]
    devices += [{"type": "GPU", **gpu} for gpu in nvidia_gpus()]
    return devices
