"""One Redis client per process, with short timeouts so a dead Redis fails fast.

Pages and /healthz must answer "Redis is down" within about a second, never hang on it.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

# What a Redis outage looks like from redis-py: connection refused, timeouts, DNS, ...
REDIS_ERRORS = (redis.RedisError, OSError)


@functools.cache
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=max(timeout, 5.0),
        health_check_interval=30,
        decode_responses=True,
    )


def get_redis() -> redis.Redis:
    return _client(settings.REDIS_URL, settings.HEALTH_TIMEOUT)


@functools.cache
def _quick_client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


def quick_redis() -> redis.Redis:
    """A client for callers that must never wait on Redis, such as a training loop publishing
    progress: one try and short timeouts. redis-py's default client retries a command ten
    times, so against a paused Redis one call would block for about a minute."""
    return _quick_client(settings.REDIS_URL, settings.HEALTH_TIMEOUT)


def redis_problem() -> str | None:
    """None when Redis answers a PING, else a short description of what went wrong."""
    try:
        get_redis().ping()
    except REDIS_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
