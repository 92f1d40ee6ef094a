"""Request body caps, enforced before a byte of the body is read (WSGI middleware around Django).

Django reads a multipart body only when a view touches `request.FILES`/`request.POST`, and then
streams every file part above FILE_UPLOAD_MAX_MEMORY_SIZE to DATA_DIR/tmp, whatever its size;
the views compare sizes only afterwards. One anonymous request declaring 50 GB to the public
demo (or a multipart login form) could so fill the disk. Here each address has a cap (its
setting plus room for the other form fields and the multipart framing): a request whose
Content-Length exceeds it gets 413 with a sentence without being read, and a body sent without
a length (chunked transfer) is read into a spooled temporary file only up to the cap: past it,
the request is cut off with 413 and what was read is discarded (the file is anonymous, so
nothing is left on disk). A chunked body within its cap is handed to Django with its length,
which Django needs to read it at all.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings

# Room for the other fields of a multipart form (a backbone's labels file is at most 1 MiB) and
# the boundaries and part headers.
FORM_SLACK = 2 * 2**20
READ_BLOCK = 64 * 2**10


@dataclass(frozen=True)
class Cap:
    max_bytes: int
    sentence: str  # for the person who sent too much


def human_size(n: int) -> str:
    from webapp.datasets.services import human_size  # imports models: only once Django is set up

    return human_size(n)


def _photo(limit: int) -> Cap:
    return Cap(limit + FORM_SLACK, f"This photo is too large; send one under {limit // 2**20} MiB.")


# (path pattern, the cap it gets), first match wins; every other address gets Django's own limit
# for bodies that are not files (DATA_UPLOAD_MAX_MEMORY_SIZE).
ROUTES: list[tuple[re.Pattern, Callable[[], Cap]]] = [
    (re.compile(r"^/api/models/[^/]+/(predict|caption)/$"), lambda: _photo(settings.PREDICT_MAX_BYTES)),
    (re.compile(r"^/demo/[^/]+/caption/$"), lambda: _photo(settings.DEMO_MAX_BYTES)),
    (re.compile(r"^/api/backbones/([^/]+/)?$"), lambda: Cap(
        settings.BACKBONE_MAX_BYTES + FORM_SLACK,
        f"This file is too large; a backbone may be at most {settings.BACKBONE_MAX_BYTES // 2**20} MiB.")),
    (re.compile(r"^/api/datasets/$"), lambda: Cap(
        settings.MAX_UPLOAD_SIZE + FORM_SLACK,
        f"This file is too large; the largest upload allowed here is {human_size(settings.MAX_UPLOAD_SIZE)}.")),
    (re.compile(r"^/api/uploads/[^/]+/$"), lambda: Cap(
        settings.UPLOAD_CHUNK_SIZE * 2,
        f"This chunk is too large; send at most {settings.UPLOAD_CHUNK_SIZE} bytes per request.")),
]


def cap_for(path: str) -> Cap:
    for pattern, cap in ROUTES:
        if pattern.match(path):
            return cap()
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + FORM_SLACK
    return Cap(limit, f"This request is too large; this address takes at most {human_size(limit)}.")


class _Closing:
    """The application's response, closing `resource` (the spooled body) once the server is done with it."""

    def __init__(self, response: Iterable[bytes], resource):
        self.response, self.resource = response, resource

    def __iter__(self):
        return iter(self.response)

    def close(self):
        try:
            if hasattr(self.response, "close"):
                self.response.close()
        finally:
            self.resource.close()


class BodyLimits:
    """Wraps the WSGI application: 413 before reading for declared lengths over the cap, cut-off for chunked."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        cap = cap_for(environ.get("PATH_INFO", ""))
        declared = (environ.get("CONTENT_LENGTH") or "").strip()
        if declared:
            if declared.isdigit() and int(declared) > cap.max_bytes:
                return _too_large(start_response, cap)
            return self.app(environ, start_response)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not (chunked and environ.get("wsgi.input_terminated")):
            return self.app(environ, start_response)  # no body, or none Django would read
        body = _spool(environ["wsgi.input"], cap.max_bytes)
        if body is None:
            return _too_large(start_response, cap)
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = body, str(body.tell())
        body.seek(0)
        try:
            return _Closing(self.app(environ, start_response), body)
        except BaseException:
            body.close()
            raise


def _spool(stream, limit: int):
    """The body read to its end into an anonymous spooled file, or None (nothing kept) once it passes `limit`."""
    body = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE,
                                         dir=settings.FILE_UPLOAD_TEMP_DIR)
    size = 0
    try:
        while block := stream.read(READ_BLOCK):
            size += len(block)
            if size > limit:
                body.close()
                return None
            body.write(block)
    except BaseException:
        body.close()
        raise
    return body


def _too_large(start_response, cap: Cap) -> list[bytes]:
    payload = json.dumps({"detail": cap.sentence}).encode()
    start_response("413 Request Entity Too Large", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
