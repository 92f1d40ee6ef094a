"""Logins that stop guessing: the login page and the admin's count failures per client address
and per username (LOGIN_FAILURES_PER_IP, LOGIN_FAILURES_PER_USERNAME; webapp.throttling).

Past either limit the form no longer checks passwords, the right one included, until the
window has room again: the page answers 429 with a sentence and a Retry-After header.
"""

from __future__ import annotations

import functools
import math

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from webapp.throttling import login_limits, minutes, paused_for


class LimitedLoginMixin:
    """For an AuthenticationForm: refuse while paused, count a failed attempt."""

    paused_for: float | None = None

    def clean(self):
        limits = login_limits(self.request, str(self.data.get("username", ""))) if self.request else []
        wait = paused_for(limits)
        if wait is not None:
            self.paused_for = wait
            raise ValidationError(f"Too many failed logins. For safety, logging in is paused: wait {minutes(wait)} "
                                  "and try again.", code="throttled")
        try:
            return super().clean()
        except ValidationError:
            for limit in limits:
                limit.record()
            raise


class LoginForm(LimitedLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(LimitedLoginMixin, AdminAuthenticationForm):
    pass


def answers_429_when_paused(view):
    """Wrap a login view whose form is a LimitedLoginMixin: a paused login answers 429, not 200."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        form = (getattr(response, "context_data", None) or {}).get("form")
        wait = getattr(form, "paused_for", None)
        if wait is not None:
            response.status_code = 429
            response["Retry-After"] = str(math.ceil(wait))
        return response

    return wrapped
