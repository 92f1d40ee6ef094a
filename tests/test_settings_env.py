"""Typed environment helpers: values people write are understood, typos stop the server."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from webapp import env


@pytest.mark.parametrize("raw, expected", [("1", True), ("yes", True), ("TRUE", True), ("on", True),
                                           ("0", False), ("no", False), ("off", False), ("", False)])
def test_booleans_are_read_in_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("VL_FLAG", raw)

    assert env.env_bool("VL_FLAG") is expected


def test_a_misspelled_boolean_stops_with_the_variable_named(monkeypatch):
    monkeypatch.setenv("DEBUG", "flase")

    with pytest.raises(ImproperlyConfigured, match="DEBUG='flase' is not a boolean"):
        env.env_bool("DEBUG")


@pytest.mark.parametrize("raw, expected", [("10GiB", 10 * 1024**3), ("500 MB", 500 * 1000**2),
                                           ("1048576", 1048576), ("1.5KiB", 1536)])
def test_sizes_are_read_with_units(monkeypatch, raw, expected):
    monkeypatch.setenv("MAX_UPLOAD_SIZE", raw)

    assert env.env_size("MAX_UPLOAD_SIZE", "1GiB") == expected


def test_a_size_without_a_known_unit_stops_with_an_example(monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_SIZE", "ten gigs")

    with pytest.raises(ImproperlyConfigured, match="write e.g. 10GiB"):
        env.env_size("MAX_UPLOAD_SIZE", "1GiB")


def test_integers_below_their_minimum_are_refused(monkeypatch):
    monkeypatch.setenv("WORKER_CONCURRENCY", "0")

    with pytest.raises(ImproperlyConfigured, match="must be at least 1"):
        env.env_int("WORKER_CONCURRENCY", 1, minimum=1)


def test_lists_are_comma_separated(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", "vision.example.org, localhost,,")

    assert env.env_list("ALLOWED_HOSTS", []) == ["vision.example.org", "localhost"]


def test_a_secret_can_come_from_a_file(monkeypatch, tmp_path):
    (tmp_path / "secret").write_text("from-a-docker-secret\n")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "secret"))

    assert env.env_secret("SECRET_KEY", tmp_path / "generated") == "from-a-docker-secret"


def test_a_generated_secret_is_kept_private_and_reused(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)

    first = env.env_secret("SECRET_KEY", tmp_path / "secret_key")
    second = env.env_secret("SECRET_KEY", tmp_path / "secret_key")

    assert first == second and len(first) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_trusted_proxies_are_a_count_or_addresses_and_anything_else_stops(monkeypatch):
    import ipaddress

    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    assert env.env_proxies("TRUSTED_PROXIES") == (0, [])
    monkeypatch.setenv("TRUSTED_PROXIES", "2")
    assert env.env_proxies("TRUSTED_PROXIES") == (2, [])
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.5, 172.16.0.0/12,")
    assert env.env_proxies("TRUSTED_PROXIES") == (0, [ipaddress.ip_network("10.0.0.5/32"),
                                                      ipaddress.ip_network("172.16.0.0/12")])
    monkeypatch.setenv("TRUSTED_PROXIES", "proxy.internal")
    with pytest.raises(ImproperlyConfigured, match="'proxy.internal' is not an IP address"):
        env.env_proxies("TRUSTED_PROXIES")


def test_rates_are_a_count_per_period(monkeypatch):
    monkeypatch.setenv("LOGIN_FAILURES_PER_IP", "20 / Hour")
    assert env.env_rate("LOGIN_FAILURES_PER_IP", "30/hour") == "20/hour"
    monkeypatch.setenv("LOGIN_FAILURES_PER_IP", "20 per hour")
    with pytest.raises(ImproperlyConfigured, match="write e.g. 10/minute"):
        env.env_rate("LOGIN_FAILURES_PER_IP", "30/hour")
