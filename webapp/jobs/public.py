"""What of a job's record its owner reads: nothing that names a server path or a machine.

Workers record where they ran because the platform needs it: the job row keeps the Celery node
name (`jobs@<host>`, how a vanished worker's jobs are found), results keep the host in their
environment, and backbone records the file they read under DATA_DIR. Staff, who run the
machines, see all of it; everyone else sees the worker's name without its host, results without
hosts or backbone files, and any server path in a message or log as `DATA_DIR/...` (see relative_paths).
"""

from __future__ import annotations

import os

from django.conf import settings


def worker_name(worker: str) -> str:
    """`jobs@gpu-host-3` -> `jobs`: which kind of worker ran it, not on which machine."""
    return (worker or "").partition("@")[0]


def relative_paths(text):
    """`text` with no server path in it (non-strings as they are): a path under DATA_DIR reads
    `DATA_DIR/...` (what an administrator needs to act, and nothing about the machine), one under
    the Keras cache `KERAS_HOME/...`, and one under the code's folder is relative to it.

    Every error sentence a user reads passes through here: job errors and messages, log lines,
    dataset errors and backbone errors.
    """
    if not isinstance(text, str):
        return text
    for root, name in _roots():
        text = text.replace(root + "/", name + "/" if name else "").replace(root, name or ".")
    return text


def _roots() -> list[tuple[str, str]]:
    """(server folder, what to call it), the deepest first so a folder inside another keeps its own name."""
    roots = {str(settings.DATA_DIR).rstrip("/"): "DATA_DIR", str(settings.BASE_DIR).rstrip("/"): ""}
    keras_home = os.environ.get("KERAS_HOME", "").rstrip("/")
    if keras_home and not any(keras_home == root or keras_home.startswith(root + "/") for root in roots):
        roots[keras_home] = "KERAS_HOME"
    return sorted(((root, name) for root, name in roots.items() if len(root) > 1), key=lambda pair: -len(pair[0]))


def without_source(backbone):
    """A backbone record without where its file sits on the server."""
    if not isinstance(backbone, dict):
        return backbone
    return {key: value for key, value in backbone.items() if key != "source"}


def job_for(data: dict, user) -> dict:
    """A serialized job as `user` may read it (see the module docstring)."""
    if getattr(user, "is_staff", False):
        return data
    data = dict(data)
    data["worker"] = worker_name(data.get("worker", ""))
    data["error"] = relative_paths(data.get("error"))
    data["message"] = relative_paths(data.get("message"))
    result = data.get("result")
    if isinstance(result, dict):
        result = {key: value for key, value in result.items() if key != "host"}  # the system check's host
        if isinstance(result.get("environment"), dict):
            result["environment"] = {k: v for k, v in result["environment"].items() if k != "host"}
        if "backbone" in result:
            result["backbone"] = without_source(result["backbone"])
        data["result"] = result
    return data
