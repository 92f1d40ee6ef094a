"""Rate limits keyed on the real client: DRF's throttles, counted in the Redis-backed cache.

`client_ip` is the one answer to "who is asking". X-Forwarded-For is written by whoever sends
the request, so it is believed only as far as configured proxies vouch for it
(`TRUSTED_PROXIES`: a count, DRF's `NUM_PROXIES`, or the proxies' addresses); without them
the peer address is the client, whatever the header says.

The limits: the public caption demo (`DEMO_RATE_PER_MINUTE` per demo and client) and failed
logins (per client address and per username; `LoginFailures`) on the login page, the admin's
and the API's tokens. Counts live in Django's cache (Redis), so every web process shares them;
when Redis is down the limits let requests through, and the request itself reports the outage.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math

from django.conf import settings
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from webapp.redis_client import REDIS_ERRORS


class Paused(Throttled):
    """429 with our own sentence (DRF's appends "Expected available in N seconds."); Retry-After says when."""

    def __init__(self, wait: float, detail: str):
        super().__init__(None, detail)
        self.wait = math.ceil(wait)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_ip(request) -> str:
    """The client's address: the peer's, unless trusted proxies vouch for an X-Forwarded-For entry.

    With proxy addresses (TRUSTED_PROXIES=10.0.0.5,...), the header is read from the right while
    each hop is a trusted proxy: the first hop that is not is the client. With a count (DRF's
    NUM_PROXIES), the entry that many from the right, which the outermost proxy wrote.
    """
    peer = request.META.get("REMOTE_ADDR") or "unknown"
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    networks = getattr(settings, "TRUSTED_PROXY_NETWORKS", [])
    if networks:
        hop = _ip(peer)
        if hop is None or not any(hop in network for network in networks):
            return peer
        client = peer
        for entry in reversed([e for e in forwarded.split(",") if e.strip()]):
            address = _ip(entry)
            if address is None:
                break  # not an address: a trusted proxy did not write this, so stop at the last one that did
            client = str(address)
            if not any(address in network for network in networks):
                break
        return client
    count = api_settings.NUM_PROXIES or 0
    entries = [e.strip() for e in forwarded.split(",") if e.strip()]
    if count <= 0 or not entries:
        return peer
    return entries[-min(count, len(entries))]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class ClientThrottle(SimpleRateThrottle):
    """DRF's sliding-window throttle, keyed on `client_ip`, open when Redis is down."""

    def get_ident(self, request) -> str:
        return client_ip(request)

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except REDIS_ERRORS:
            return True


class DemoThrottle(ClientThrottle):
    """DEMO_RATE_PER_MINUTE captions per minute for each (demo link, client)."""

    scope = "demo"

    def get_rate(self) -> str:
        return f"{settings.DEMO_RATE_PER_MINUTE}/min"

    def get_cache_key(self, request, view) -> str:
        token = str(view.kwargs.get("token", ""))
        return self.cache_format % {"scope": f"demo_{_digest(token)}", "ident": self.get_ident(request)}


class LoginFailures(ClientThrottle):
    """Failed logins counted under one identity (a client address or a username), with DRF's window.

    Unlike a request throttle it counts only failures: `wait()` before trying a password says
    whether this identity is paused (and for how long), `record()` after a wrong one counts it.
    """

    def __init__(self, scope: str, ident: str):
        self.scope = scope  # "login_ip" or "login_username": a DEFAULT_THROTTLE_RATES entry
        self.key = self.cache_format % {"scope": scope, "ident": _digest(ident)}
        super().__init__()

    def get_rate(self) -> str:
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def _load(self) -> None:
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]

    def paused_for(self) -> float | None:
        """Seconds until this identity may try again, or None when it may try now."""
        try:
            self._load()
        except REDIS_ERRORS:
            return None
        if len(self.history) < self.num_requests:
            return None
        # Newest first: the pause ends when the failure that filled the window leaves it.
        return max(1.0, self.history[self.num_requests - 1] + self.duration - self.now)

    def record(self) -> None:
        try:
            self._load()
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)
        except REDIS_ERRORS:
            pass


def login_limits(request, username: str | None = None) -> list[LoginFailures]:
    """The failure counters a login attempt from `request` (as `username`) is held to."""
    limits = [LoginFailures("login_ip", client_ip(request))]
    if username:
        limits.append(LoginFailures("login_username", username.strip().casefold()))
    return limits


def paused_for(limits: list[LoginFailures]) -> float | None:
    waits = [wait for limit in limits if (wait := limit.paused_for()) is not None]
    return max(waits) if waits else None


def minutes(seconds: float) -> str:
    count = max(1, math.ceil(seconds / 60))
    return "a minute" if count == 1 else f"{count} minutes"


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, with a limit on wrong tokens per client address.

    A client past LOGIN_FAILURES_PER_IP wrong tokens gets 429 with a sentence, before its token is
    even looked up, until its window has room again; right tokens are never counted.
    """

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        limits = login_limits(request)
        wait = paused_for(limits)
        if wait is not None:
            raise Paused(wait, f"Too many wrong API tokens came from your address. Wait {minutes(wait)} and "
                               "try again.")
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            for limit in limits:
                limit.record()
            raise
