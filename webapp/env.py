"""Typed readers for environment variables.

Every setting VisionLab has comes from the environment (see `.env.example`). These helpers
turn the raw strings into typed values and fail loudly, naming the variable, when a value
cannot be understood: a typo in `DEBUG=flase` must stop the server, not silently mean False.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "tb": 1000**4,
}


def _raw(name: str) -> str | None:
    """The variable's value, or the contents of the file named by `NAME_FILE` (Docker secrets)."""
    value = os.environ.get(name)
    if value is not None:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    return None


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no.")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_float(name: str, default: float) -> float:
    value = _raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_size(text: str) -> int:
    """Parse '10GiB', '500 MB', '1048576' into bytes; raise ValueError when it is not a size."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(text)
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def env_size(name: str, default: str) -> int:
    """A size in bytes, written as a number with an optional unit (KB, MB, GiB...)."""
    value = _raw(name)
    try:
        return parse_size(default if value is None or not value.strip() else value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a size; write e.g. 10GiB, 500MB or a number of bytes."
        ) from None


def env_secret(name: str, generated_file: Path) -> str:
    """A secret from `NAME`/`NAME_FILE`, else one generated once and kept in `generated_file`.

    The generated file lets a fresh `make run` work with no configuration while keeping
    sessions valid across restarts; production deployments set the variable instead.
    """
    value = _raw(name)
    if value:
        return value
    try:
        return generated_file.read_text().strip()
    except FileNotFoundError:
        pass
    from django.core.management.utils import get_random_secret_key

    generated_file.parent.mkdir(parents=True, exist_ok=True)
    secret = get_random_secret_key()
    try:
        fd = os.open(generated_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (web or worker) wrote it first
        return generated_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


_RATE = re.compile(r"\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*", re.IGNORECASE)


def env_rate(name: str, default: str) -> str:
    """A rate as DRF's throttles write it: a count per second, minute, hour or day ("10/hour")."""
    value = _raw(name)
    match = _RATE.fullmatch(default if value is None or not value.strip() else value)
    if not match or int(match.group(1)) < 1:
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate; write e.g. 10/minute, 30/hour or 100/day.")
    return f"{int(match.group(1))}/{match.group(2).lower()}"


def env_proxies(name: str) -> tuple[int, list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """The reverse proxies whose X-Forwarded-For may be believed: how many sit in front ("1"), or
    their addresses and networks ("10.0.0.5, 172.16.0.0/12"). Returns (count, networks); empty: (0, [])."""
    value = (_raw(name) or "").strip()
    if not value:
        return 0, []
    if value.isdigit():
        return int(value), []
    networks = []
    for item in value.split(","):
        if not item.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item.strip()!r} is not an IP address or network; write the number of proxies "
                "in front of VisionLab (e.g. 1) or their addresses (e.g. 10.0.0.5, 172.16.0.0/12).") from None
    return 0, networks
