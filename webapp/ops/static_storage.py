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
from concurrent.futures import Future

from whitenoise.compress import Compressor
from whitenoise.storage import CompressedManifestStaticFilesStorage


class _OnceCompressor(Compressor):
    """A Compressor that compresses each distinct content once per collection, even from several threads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._results: dict[tuple[str, bytes], Future] = {}

    def _once(self, method: str, compress: Callable[[bytes], bytes], data: bytes) -> bytes:
        key = (method, hashlib.sha256(data).digest())
        with self._lock:
            result = self._results.get(key)
            if result is None:
                result = self._results[key] = Future()
                mine = True
            else:
                mine = False
        if mine:
            try:
                result.set_result(compress(data))
            except BaseException as exc:
                result.set_exception(exc)
                raise
        return result.result()  # another thread's compression of the same bytes: wait for it

    def compress_gzip(self, data: bytes) -> bytes:
        return self._once("gzip", Compressor.compress_gzip, data)

    def compress_brotli(self, data: bytes) -> bytes:
        return self._once("brotli", Compressor.compress_brotli, data)


class CompressedManifestStorage(CompressedManifestStaticFilesStorage):
    def create_compressor(self, **kwargs) -> Compressor:
        return _OnceCompressor(**kwargs)
