"""HTTP body compression, cut to what clickhouse-connect uses: its ``compress`` option sends
request bodies as lz4 (frames, one per block), zstd or gzip, and asks for responses in those
(``Accept-Encoding``). chDB's default ``enable_http_compression`` is 1, so responses are
compressed whenever the client accepts one of them. brotli, which clickhouse-connect also
offers, needs a module that is not installed here; any other encoding is refused with
NOT_IMPLEMENTED, as ClickHouse refuses one it does not know."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Final

import lz4.frame
import zstandard

from jupiter_local.chdb_http.errors import ClickHouseError, not_implemented

_Codec = Callable[[bytes], bytes]


def _lz4_decompress(data: bytes) -> bytes:
    """Concatenated LZ4 frames: clickhouse-connect compresses each block as its own frame."""
    out = bytearray()
    rest = data
    while rest:
        decoder = lz4.frame.LZ4FrameDecompressor()
        out += decoder.decompress(rest)
        if not decoder.eof:
            raise ValueError("truncated LZ4 frame")
        rest = bytes(decoder.unused_data or b"")
    return bytes(out)


def _zstd_decompress(data: bytes) -> bytes:
    """Concatenated zstd frames, which may not say their content size (streamed writers)."""
    out = bytearray()
    rest = data
    while rest:
        decoder = zstandard.ZstdDecompressor().decompressobj()
        out += decoder.decompress(rest)
        if not decoder.eof:
            raise ValueError("truncated zstd frame")
        rest = bytes(decoder.unused_data or b"")
    return bytes(out)


_DECODERS: Final[dict[str, _Codec]] = {
    "lz4": _lz4_decompress,
    "zstd": _zstd_decompress,
    "gzip": gzip.decompress,
}
_ENCODERS: Final[dict[str, Callable[[bytes, int], bytes]]] = {
    "lz4": lambda data, level: bytes(lz4.frame.compress(data)),
    "zstd": lambda data, level: bytes(zstandard.ZstdCompressor().compress(data)),
    "gzip": lambda data, level: gzip.compress(data, level),
}
# ClickHouse's chooseHTTPCompressionMethod order, among the encodings served here.
_PREFERENCE: Final = ("zstd", "lz4", "gzip")


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Undo a request ``Content-Encoding``."""
    name = (content_encoding or "").strip().lower()
    if name in ("", "identity", "none"):
        return body
    decoder = _DECODERS.get(name)
    if decoder is None:
        raise not_implemented(
            f"Unknown or unavailable compression method '{name}'. Available here: "
            + ", ".join(sorted(_DECODERS))
        )
    try:
        return decoder(body)
    except Exception as exc:
        raise ClickHouseError(
            271, "CANNOT_DECOMPRESS", f"Cannot decompress the {name} request body: {exc}"
        ) from exc


def choose_response_encoding(accept_encoding: str) -> str | None:
    """The response encoding ClickHouse would choose for this ``Accept-Encoding``."""
    accepted: dict[str, float] = {}
    for item in accept_encoding.split(","):
        token, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if token:
            accepted[token.strip().lower()] = quality
    for name in _PREFERENCE:
        if accepted.get(name, accepted.get("*", 0.0)) > 0:
            return name
    return None


def encode_body(body: bytes, encoding: str, zlib_level: int) -> bytes:
    """Compress a response body with an encoding :func:`choose_response_encoding` chose."""
    return _ENCODERS[encoding](body, zlib_level)
