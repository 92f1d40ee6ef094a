"""One `manage.py collectstatic` per test run, for every `runstack` stack that serves pages as `make run` does.

`collectstatic` compresses each file with Brotli and gzip (tens of seconds of CPU), and its output
depends on the code and the installed packages, never on a stack's DATA_DIR. So the first stack of
a run that needs it collects into a folder every test process of the run can see (the run's base
temporary folder, the parent of each xdist worker's), under a file lock, and each stack gets
hard links to those files in its own DATA_DIR/staticfiles, where `make run` puts them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _shared_folder(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def collected_static(tmp_path_factory) -> Path:
    """The folder `manage.py collectstatic` wrote for this run (once, by whichever process asked first)."""
    shared = _shared_folder(tmp_path_factory)
    done = shared / "collected-static"
    with open(shared / "collected-static.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second asker waits here, then finds it done
        if not done.is_dir():
            partial = shared / "collected-static.partial"
            shutil.rmtree(partial, ignore_errors=True)  # an asker that failed half-way left it
            env = {k: v for k, v in os.environ.items()
                   if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
            env.update(DATA_DIR=str(shared / "collected-static-data"), STATIC_ROOT=str(partial))
            subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env,
                           check=True, timeout=600)
            partial.rename(done)
    return done


def install_static(tmp_path_factory, data_dir: Path) -> Path:
    """DATA_DIR/staticfiles as `make run`'s `collectstatic` leaves it, from this run's one collection."""
    target = Path(data_dir) / "staticfiles"
    shutil.copytree(collected_static(tmp_path_factory), target, copy_function=_link_or_copy, dirs_exist_ok=True)
    return target
