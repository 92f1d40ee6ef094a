"""The system check as plain ML code: no Django, no Celery, a recording sink."""

from __future__ import annotations

from jobs.ml.devices import describe_machine
from jobs.ml.system_check import run_system_check


class RecordingSink:
    def __init__(self):
        self.fractions, self.messages, self.device = [], [], None

    def progress(self, fraction, message=""):
        self.fractions.append(fraction)
        self.messages.append(message)

    def epoch_end(self, epoch, metrics):
        raise AssertionError("a system check has no epochs")

    def set_device(self, device):
        self.device = device


def test_the_system_check_measures_every_device_and_reports_monotonic_progress():
    sink = RecordingSink()

    result = run_system_check(sink, seconds_per_device=0.3)

    assert sink.fractions[0] < 0.1 and sink.fractions[-1] == 1.0
    assert sink.fractions == sorted(sink.fractions)
    assert any("matrix-multiply" in m for m in sink.messages)
    assert sink.device and sink.device.startswith("CPU")
    cpu = result["devices"][0]
    assert cpu["type"] == "CPU" and cpu["gflops"] > 0.1 and cpu["matmul_runs"] >= 4
    assert result["tensorflow"].startswith("2.") and result["keras"].startswith("3.")


def test_the_machine_description_lists_the_cpu_first_without_tensorflow():
    devices = describe_machine()

    assert devices[0]["type"] == "CPU" and devices[0]["cores"] >= 1
    assert all(d["type"] == "GPU" for d in devices[1:])
