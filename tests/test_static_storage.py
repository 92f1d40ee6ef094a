"""The static storage compresses a content once and writes what WhiteNoise's own compressor writes."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from whitenoise.compress import Compressor

from webapp.ops.static_storage import CompressedManifestStorage, _OnceCompressor


def test_each_content_is_compressed_once_into_the_same_files_whitenoise_writes(tmp_path, monkeypatch):
    calls: list[str] = []
    gzip, brotli = Compressor.compress_gzip, Compressor.compress_brotli
    gate = threading.Barrier(4)

    def counted(name, compress):
        def run(data):
            calls.append(name)
            return compress(data)
        return run

    monkeypatch.setattr(Compressor, "compress_gzip", staticmethod(counted("gzip", gzip)))
    monkeypatch.setattr(Compressor, "compress_brotli", staticmethod(counted("brotli", brotli)))
    text = b"body { color: red; }\n" * 500
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    names = ["site.css", "site.0123abcd.css", "copy.css", "other.css"]
    for folder in (ours, theirs):
        folder.mkdir()
        for name in names:
            (folder / name).write_bytes(text if name != "other.css" else text + b"/* other */")
            os.utime(folder / name, (1_000_000, 1_000_000 + len(name)))

    once = _OnceCompressor(quiet=True)

    def compress(name):
        gate.wait()  # all four threads ask at the same moment
        return once.compress(str(ours / name))

    with ThreadPoolExecutor(4) as pool:
        written = [path for paths in pool.map(compress, names) for path in paths]
    assert sorted(calls) == ["brotli", "brotli", "gzip", "gzip"]  # two contents, each compressed once per method

    for name in names:
        Compressor(quiet=True).compress(str(theirs / name))
    assert len(written) == 8
    for path in written:
        mine, stock = ours / os.path.basename(path), theirs / os.path.basename(path)
        assert mine.read_bytes() == stock.read_bytes()
        assert mine.stat().st_mtime == stock.stat().st_mtime
    assert isinstance(CompressedManifestStorage().create_compressor(quiet=True), _OnceCompressor)


def test_a_failed_compression_fails_every_file_that_waited_for_it(monkeypatch, tmp_path):
    def broken(data):
        raise MemoryError("no room")

    monkeypatch.setattr(Compressor, "compress_brotli", staticmethod(broken))
    once = _OnceCompressor(quiet=True)
    for name in ("a.js", "a.0123abcd.js"):
        (tmp_path / name).write_bytes(b"x" * 4000)
        with pytest.raises(MemoryError):
            once.compress(str(tmp_path / name))
