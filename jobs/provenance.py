"""What a run needs to be repeated: the code and library versions of the process that ran it.

Read from package metadata and git, never by importing the libraries, so the web process can
say what it would record and a worker says what it ran with. The git commit is the code version
when the server runs from a checkout (with "+changes" when files differ from it); an installed
package gives its version instead.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name in the record -> the distributions that provide it (the CPU build of TensorFlow has its own name)
LIBRARIES = {"django": ("django",), "djangorestframework": ("djangorestframework",), "celery": ("celery",),
             "tensorflow": ("tensorflow", "tensorflow-cpu"), "keras": ("keras",), "numpy": ("numpy",),
             "scikit-learn": ("scikit-learn",), "pillow": ("pillow",)}


@functools.cache
def code_version() -> str:
    """"git:<commit>[+changes]" in a checkout, else "visionlab <version>", else "unknown"."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return f"git:{commit}" + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"visionlab {metadata.version('visionlab')}"
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def library_versions() -> dict[str, str]:
    """{"python": ..., library: version} for the libraries a run's numbers depend on."""
    versions = {"python": platform.python_version()}
    for name, distributions in LIBRARIES.items():
        for distribution in distributions:
            try:
                versions[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def run_record() -> dict:
    """What a worker adds to a job's record when it starts the job."""
    return {"code": code_version(), "libraries": library_versions()}
