"""System check: what a worker can compute on, and how fast.

Reports the host, the Python/TensorFlow/Keras versions, every device TensorFlow sees (each
GPU's name and memory) and a measured float32 matrix-multiply throughput per device. It is
the smallest real job: it proves a worker can import TensorFlow and run kernels, and gives
the figure later jobs are compared against.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time

from jobs.ml import devices as machine
from jobs.ml.progress import ProgressSink

# Square matrix sizes: big enough to reach a device's throughput, small enough for seconds.
CPU_MATMUL_SIZE = 1024
GPU_MATMUL_SIZE = 8192


def _benchmark_matmul(tf, device: str, size: int, seconds: float, on_step) -> dict:
    """Multiply two size x size float32 matrices on `device` for about `seconds`; GFLOP/s."""
    with tf.device(device):
        a = tf.random.stateless_uniform((size, size), seed=(1, 2), dtype=tf.float32)
        b = tf.random.stateless_uniform((size, size), seed=(3, 4), dtype=tf.float32)

        @tf.function
        def step(x):
            # The product feeds the next step, so nothing runs ahead of the clock.
            return tf.matmul(x, b) * (1.0 / size)

        x = step(a)
        float(tf.reduce_sum(x))  # warm up: trace, allocate, pick kernels
        runs, start = 0, time.perf_counter()
        while True:
            x = step(x)
            runs += 1
            if runs % 4 == 0:
                float(tf.reduce_sum(x))  # wait for the device before reading the clock
                elapsed = time.perf_counter() - start
                on_step(min(1.0, elapsed / seconds))
                if elapsed >= seconds:
                    break
    flops = 2.0 * size**3 * runs
    return {"matmul_size": size, "matmul_runs": runs, "seconds": round(elapsed, 3),
            "gflops": round(flops / elapsed / 1e9, 2)}


def run_system_check(sink: ProgressSink, seconds_per_device: float = 2.0) -> dict:
    """Describe this machine and benchmark each device. Returns a JSON-ready dict."""
    sink.progress(0.02, "Loading TensorFlow")
    import keras
    import numpy
    import tensorflow as tf

    sink.progress(0.15, "Listing devices")
    gpus_smi = machine.nvidia_gpus()
    devices = [{
        "type": "CPU", "tf_name": "/CPU:0", "name": machine.cpu_model(),
        "cores": os.cpu_count(), "memory_bytes": machine.memory_bytes(),
    }]
    for index, gpu in enumerate(tf.config.list_physical_devices("GPU")):
        details = tf.config.experimental.get_device_details(gpu)
        smi = gpus_smi[index] if index < len(gpus_smi) else {}
        devices.append({
            "type": "GPU", "tf_name": f"/GPU:{index}",
            "name": details.get("device_name") or smi.get("name") or gpu.name,
            "compute_capability": ".".join(map(str, details.get("compute_capability", ()))) or None,
            "memory_bytes": smi.get("memory_bytes"),
        })
    gpu_names = [d["name"] for d in devices if d["type"] == "GPU"]
    sink.set_device(", ".join(gpu_names) if gpu_names else f"CPU ({devices[0]['name']})")

    span = 0.8 / len(devices)
    for index, device in enumerate(devices):
        base = 0.15 + index * span
        label = f"Measuring matrix-multiply speed on {device['type']} {device['name']}"
        sink.progress(base, label)
        size = GPU_MATMUL_SIZE if device["type"] == "GPU" else CPU_MATMUL_SIZE
        device.update(_benchmark_matmul(
            tf, device["tf_name"], size, seconds_per_device,
            lambda done, base=base, label=label: sink.progress(base + done * span, label),
        ))

    sink.progress(1.0, "Done")
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "built_with_cuda": tf.test.is_built_with_cuda(),
        "devices": devices,
    }
