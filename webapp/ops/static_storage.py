"""The static files storage `collectstatic` writes with: WhiteNoise's, compressing each content once.

WhiteNoise's CompressedManifestStaticFilesStorage writes a Brotli and a gzip copy of every collected
file, of its original name and of its hashed name alike. Most hashed files are byte-for-byte copies
of their originals (all but the CSS and JS whose references were rewritten), so it compressed the
same bytes twice, at Brotli's slowest setting: most of the half-minute `make run` spends in
`collectstatic`. Here a content is compressed once and its result written under both names. The
files written are the same bytes, with the same names and times, as WhiteNoise's own.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

from whitenoise.compress import Compressor
from whitenoise.storage import CompressedManifestStaticFilesStorage


class _OnceCompressor(Compressor):
    """A Compressor that compresses each distinct content once per collection, even from several threads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._results: dict[tuple[str, bytes], _Result] = {}

    def _once(self, method: str, compress: Callable[[bytes], bytes], data: bytes) -> bytes:
        key = (method, hashlib.sha256(data).digest())
        with self._lock:
            result = self._results.get(key)
            if result is None:
                result = self._results[key] = _Result()
                mine = True
            else:
                mine = False
        if mine:
            try:
                result.set(compress(data))
            except BaseException as exc:
                result.fail(exc)
                raise
        return result.get()

    def compress_gzip(self, data: bytes) -> bytes:
        return self._once("gzip", Compressor.compress_gzip, data)

    def compress_brotli(self, data: bytes) -> bytes:
        return self._once("brotli", Compressor.compress_brotli, data)


class _Result:
    """One compression's bytes, which other threads asking for the same content wait for."""

    def __init__(self):
        self._done = threading.Event()
        self._value: bytes | None = None
        self._error: BaseException | None = None

    def set(self, value: bytes) -> None:
        self._value = value
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    def get(self) -> bytes:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class CompressedManifestStorage(CompressedManifestStaticFilesStorage):
    def create_compressor(self, **kwargs) -> Compressor:
        return _OnceCompressor(**kwargs)
