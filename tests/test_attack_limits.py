"""Rate limits attacked over HTTP (a live server): they key on the real client, not on what it writes.

X-Forwarded-For is written by the client. Unless proxies are configured (TRUSTED_PROXIES, DRF's
NUM_PROXIES) a rotating, spoofed header must change nothing; behind one proxy the limit keys on
the address that proxy appended. Guessing passwords on the login page, the admin's, or tokens
on the API is paused per client address and per username, with a sentence (429).
"""

from __future__ import annotations

import ipaddress
import re

import pytest
import requests
from django.test import RequestFactory
from django.utils import timezone

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_counts():
    """Counts live in Redis, outside the test database: start and leave with none (127.0.0.1 is everyone's)."""
    from webapp.redis_client import get_redis

    def clear():
        keys = list(get_redis().scan_iter(match="visionlab:cache:*throttle_*", count=500))
        if keys:
            get_redis().delete(*keys)

    clear()
    yield
    clear()


@pytest.fixture
def demo(alice, settings):
    from webapp.demos.models import ShareLink
    from webapp.experiments.models import TrainedModel
    from webapp.jobs.models import Job

    job = Job.objects.create(owner=alice, kind=Job.Kind.TRAIN_CAPTIONER, status=Job.Status.SUCCEEDED,
                             finished_at=timezone.now())
    model = TrainedModel.objects.create(owner=alice, job=job, task=TrainedModel.Task.CAPTION, name="captions",
                                        architecture="merge", image_size=32, channels=3)
    settings.DEMO_RATE_PER_MINUTE = 3
    return f"/demo/{ShareLink.objects.create(model=model).token}/caption/"


def caption(live_server, path: str, forwarded: str | None = None) -> requests.Response:
    """A caption request without a photo: 400 when let through (nothing reaches a worker), 429 when limited."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return requests.post(live_server.url + path, files={"other": ("x.txt", b"x")}, headers=headers, timeout=10)


def test_rotating_spoofed_forwarded_for_does_not_escape_the_demo_limit(live_server, demo, settings):
    # Behind a TLS proxy (SECURE_PROXY=1) but with no TRUSTED_PROXIES: X-Forwarded-For is still the client's.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    spoofs = ["198.51.100.1", "198.51.100.2, 10.0.0.1", "203.0.113.99", "::1", "not-an-address", "1.1.1.1",
              ",", "198.51.100.3,198.51.100.4,198.51.100.5"]
    answers = [caption(live_server, demo, forwarded=spoof) for spoof in spoofs]

    assert [a.status_code for a in answers] == [400, 400, 400] + [429] * (len(spoofs) - 3)
    assert "Send the photo" in answers[0].json()["detail"]
    assert answers[3].json()["detail"] == "Too many photos in a minute. Please wait a moment and try again."
    assert 55 <= int(answers[3].headers["Retry-After"]) <= 60
    assert caption(live_server, demo).status_code == 429  # and no header at all: the same client


def test_behind_one_trusted_proxy_the_limit_keys_on_the_address_the_proxy_wrote(live_server, demo, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    # The proxy appends the address it saw; whatever the client wrote before it is ignored.
    first = [caption(live_server, demo, forwarded=f"10.9.9.{n}, 203.0.113.7") for n in range(4)]
    second = caption(live_server, demo, forwarded="203.0.113.8")

    assert [a.status_code for a in first] == [400, 400, 400, 429]
    assert second.status_code == 400  # another client behind the same proxy has its own allowance


def test_trusted_proxy_addresses_are_walked_from_the_right_and_nothing_else_is_believed(settings):
    from webapp.throttling import client_ip

    settings.TRUSTED_PROXY_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    factory = RequestFactory()

    def ip(peer: str, forwarded: str | None = None) -> str:
        extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
        return client_ip(factory.get("/", REMOTE_ADDR=peer, **extra))

    assert ip("10.0.0.5", "6.6.6.6, 203.0.113.7") == "203.0.113.7"  # the proxy's own entry
    assert ip("10.0.0.5", "6.6.6.6, 203.0.113.7, 10.1.1.1") == "203.0.113.7"  # two proxies deep
    assert ip("10.0.0.5", "10.2.2.2") == "10.2.2.2"  # everything trusted: the leftmost
    assert ip("10.0.0.5", "forged, 10.2.2.2") == "10.2.2.2"  # garbage stops the walk at the last proxy
    assert ip("10.0.0.5") == "10.0.0.5"
    assert ip("203.0.113.50", "6.6.6.6") == "203.0.113.50"  # not from a proxy: the header is the client's
    settings.TRUSTED_PROXY_NETWORKS = []
    assert ip("203.0.113.50", "6.6.6.6") == "203.0.113.50"  # no proxies configured: never believed


LIMITS = {"login_ip": "5/min", "login_username": "3/min"}
PAUSED = "Too many failed logins. For safety, logging in is paused"


@pytest.fixture
def login_limits(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": LIMITS}


def log_in(session: requests.Session, url: str, username: str, password: str, spoof: str) -> requests.Response:
    page = session.get(url, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(url, data={"username": username, "password": password, "csrfmiddlewaretoken": token,
                                   "next": "/"}, headers={"X-Forwarded-For": spoof, "Referer": url},
                        allow_redirects=False, timeout=10)


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_repeated_bad_logins_are_paused_per_username_and_per_address_with_a_sentence(
        live_server, login_limits, django_user_model, path):
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    django_user_model.objects.create_superuser("other", password=PASSWORD)
    url = live_server.url + path
    session = requests.Session()

    wrong = [log_in(session, url, "root", f"guess {n}", spoof=f"198.51.100.{n}") for n in range(3)]
    assert [r.status_code for r in wrong] == [200, 200, 200]
    # The username's three failures are spent: even its right password is not checked now.
    paused = log_in(session, url, "ROOT", PASSWORD, spoof="198.51.100.77")
    assert paused.status_code == 429 and PAUSED in paused.text
    assert 1 <= int(paused.headers["Retry-After"]) <= 60
    assert "sessionid" not in session.cookies

    # Another username from the same address: two failures more reach the address's five.
    assert [log_in(session, url, "other", "guess", spoof="x").status_code for _ in range(2)] == [200, 200]
    paused = log_in(session, url, "other", PASSWORD, spoof="203.0.113.1")
    assert paused.status_code == 429 and PAUSED in paused.text


def test_repeated_wrong_api_tokens_are_paused_with_429_and_a_sentence(live_server, login_limits, alice_api):
    url = live_server.url + "/api/jobs/"
    wrong = [requests.get(url, headers={"Authorization": f"Token {n:040x}", "X-Forwarded-For": f"198.51.100.{n}"},
                          timeout=10) for n in range(6)]

    assert [r.status_code for r in wrong] == [401] * 5 + [429]
    assert wrong[5].json()["detail"].startswith("Too many wrong API tokens came from your address. Wait ")
    assert "Retry-After" in wrong[5].headers
