"""`manage.py bootstrap`: create the first user on a fresh install.

A new install has no account to log in with. When the database has no user at all, this
makes a superuser `admin` with a random password (or ADMIN_PASSWORD), prints it, and keeps it
in DATA_DIR/initial-admin-password (mode 600) so `make run` can show it until it is changed.
"""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

INITIAL_PASSWORD_FILE = "initial-admin-password"


class Command(BaseCommand):
    help = "Create the first superuser (admin) with a printed password if there is no user yet."

    def handle(self, *args, **options):
        users = get_user_model().objects
        if users.exists():
            return
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.create_superuser("admin", email="", password=password)
        path = settings.DATA_DIR / INITIAL_PASSWORD_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password)
        self.stdout.write(self.style.SUCCESS(
            f"Created the first user: admin / {password} (also in {path})"))
