"""pytest plugin (loaded with `-p tests.stack`): real services for the test session.

Before Django reads its settings this gives the session a throwaway DATA_DIR and its own
`redis-server` on a free port, so tests never touch ./var or a Redis the machine already
runs. Hook wrappers run before every plain hook implementation, pytest-django's included.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from webapp.ops import stack

_state: dict = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    root = Path(tempfile.mkdtemp(prefix="visionlab-test-"))
    data_dir = root / "data"
    (data_dir / "logs").mkdir(parents=True)
    (data_dir / "staticfiles").mkdir()
    # With a password, as `make run` starts its own: the whole suite talks to Redis the way it does.
    redis, redis_url = stack.throwaway_redis(data_dir)
    _state.update(root=root, redis=redis)
    os.environ.update({
        "DATA_DIR": str(data_dir),
        "REDIS_URL": redis_url,
        "HEALTH_TIMEOUT": "1.0",
    })
    # The test database is a SQLite file in DATA_DIR that the worker process shares.
    for name in ("DATABASE_URL", "SECRET_KEY", "DEBUG"):
        os.environ.pop(name, None)
    yield


def pytest_unconfigure(config):
    if redis := _state.pop("redis", None):
        redis.stop()
    if root := _state.pop("root", None):
        shutil.rmtree(root, ignore_errors=True)
