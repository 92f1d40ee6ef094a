"""Run untrusted model files in a child process with a hard wall-clock and memory limit (issue 11, item 10).

An uploaded .keras, .h5 or .tflite file is code in all but name: a TFLite graph can loop
forever, a Keras config can ask for a terabyte of weights, and a parser bug is a crash. So the
first time VisionLab opens one (inspection and the sanity check at upload, and every re-check),
it does so in a fresh Python process (`python -m jobs.sandbox`), which the caller watches:
- past `seconds` of wall-clock time, the child's whole process group is killed;
- past `memory_bytes` of resident memory (read from /proc every 50 ms), likewise;
- a crash (segfault, abort) is just a child that died.
Each costs the file's owner a failed upload with a sentence; the shared inference worker that
asked goes on serving everyone else. Keras's safe mode still refuses Lambda layers inside.

Feature extraction with an uploaded backbone runs the same way (`jobs.features`), for the whole
dataset: there the clock counts from the child's last progress report, since a large dataset
takes as long as it takes, while a model that hangs on one image stops reporting.

The child imports no Django; it reads one JSON request on stdin ({"function", "kwargs"}, the
function one of `jobs.ml.inspection.FUNCTIONS`) and writes one JSON answer on stdout. Progress
goes as JSON lines to a file the parent reads while it waits (`jobs.ml.progress.FileSink`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

POLL_SECONDS = 0.05
ROOT = Path(__file__).resolve().parent.parent


class SandboxFailed(ValueError):
    """The child ran out of time or memory, or died; str() is a sentence for the file's owner."""


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def call(function: str, kwargs: dict, *, seconds: float, memory_bytes: int,
         on_progress: Callable[[float, str], None] | None = None, scratch: Path | None = None) -> dict:
    """`jobs.ml.inspection.FUNCTIONS[function](**kwargs)` in a watched child: its JSON answer, or SandboxFailed.

    With `on_progress`, the child gets a `progress_path` to report to, each report is passed on
    (an exception from `on_progress`, such as a cancel, kills the child and propagates), and
    `seconds` is the longest wait between two reports. Scratch files go to `scratch` (DATA_DIR/tmp
    in the services).
    """
    with tempfile.TemporaryFile(dir=scratch) as out, tempfile.TemporaryFile(dir=scratch) as err, \
            tempfile.NamedTemporaryFile(dir=scratch, prefix="progress-", suffix=".jsonl") as progress:
        if on_progress is not None:
            kwargs = {**kwargs, "progress_path": progress.name}
        request = json.dumps({"function": function, "kwargs": kwargs}).encode()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
        if scratch is not None:
            env["TMPDIR"] = str(scratch)
        process = subprocess.Popen([sys.executable, "-m", "jobs.sandbox"], stdin=subprocess.PIPE, stdout=out,
                                   stderr=err, cwd=ROOT, env=env, start_new_session=True)
        try:
            process.stdin.write(request)
            process.stdin.close()
        except BrokenPipeError:
            pass
        try:
            _watch(process, progress, seconds, memory_bytes, on_progress)
        except BaseException:
            _kill(process)
            raise
        out.seek(0)
        lines = out.read().decode("utf-8", errors="replace").strip().splitlines()
    if process.returncode != 0 or not lines:
        how = f"signal {-process.returncode}" if process.returncode < 0 else f"exit status {process.returncode}"
        raise SandboxFailed(f"The model crashed the process that ran it ({how}); it cannot be used.")
    return json.loads(lines[-1])


def _watch(process: subprocess.Popen, progress, seconds: float, memory_bytes: int,
           on_progress: Callable[[float, str], None] | None) -> None:
    """Wait for the child, passing its reports on; SandboxFailed past the time or memory limit."""
    last_report, peak, pending = time.monotonic(), 0, b""
    while True:
        done = process.poll() is not None
        if on_progress is not None:
            pending += progress.read()
            *complete, pending = pending.split(b"\n")
            for line in complete:
                report = json.loads(line)
                last_report = time.monotonic()
                on_progress(float(report["fraction"]), str(report["message"]))
        if done:
            return
        peak = max(peak, _rss_bytes(process.pid))
        if peak > memory_bytes:
            raise SandboxFailed(f"The model needed more than {memory_bytes // 2**20} MiB of memory to open and "
                                "run, so it was stopped.")
        if time.monotonic() - last_report > seconds:
            what = "reported no progress for" if on_progress is not None else "did not finish opening and running " \
                                                                              "on a few photos within"
            raise SandboxFailed(f"The model {what} {seconds:.0f} seconds, so it was stopped.")
        time.sleep(POLL_SECONDS)


def _main() -> int:
    """The child: one request in, one answer out; anything the libraries print goes to stderr."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file behind
    answer_to = os.dup(1)
    os.dup2(2, 1)  # TensorFlow and Keras print: keep stdout for the answer
    request = json.loads(sys.stdin.buffer.read() or b"{}")
    from jobs.ml.inspection import FUNCTIONS

    function = FUNCTIONS.get(request.get("function"))
    if function is None:
        answer = {"error": "Unknown sandbox request."}
    else:
        try:
            answer = function(**request.get("kwargs", {}))
        except ValueError as exc:
            answer = {"error": str(exc)}
    os.write(answer_to, (json.dumps(answer) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(_main())
