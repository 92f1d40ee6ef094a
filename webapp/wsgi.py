"""WSGI entry point for gunicorn (`webapp.wsgi:application`).

Django's application sits inside `BodyLimits`, which refuses (413) a request body larger than its
address takes before a byte of it is read (see webapp/body_limits.py).
"""

import os

from django.core.wsgi import get_wsgi_application

from webapp.body_limits import BodyLimits

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
application = BodyLimits(get_wsgi_application())
