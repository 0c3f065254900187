"""Port settings: ``off``, a port, or a range ``first-last`` of which a process takes the first
free one (the Flink web UI's and the metrics endpoint's ports)."""

from __future__ import annotations

from typing import Any


def parse_ports(value: Any, *, example: str, allow_any: bool = False) -> Any:
    """``value`` as ``off``, ``"<port>"`` or ``"<first>-<last>"``; ``0`` (any free port) too when
    ``allow_any``. Raises ``ValueError`` saying what is accepted. Non-text is left to pydantic."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text in ("", "off"):
        return "off"
    low, dash, high = text.partition("-")
    if not (low.isdigit() and (high.isdigit() or not dash)):
        any_port = " (0 for any free one)" if allow_any else ""
        raise ValueError(f"must be a port{any_port}, a range like {example}, or off")
    first, last = int(low), int(high or low)
    if allow_any and first == 0 and not dash:
        return "0"
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"must be a port, a range like {example} (1-65535), or off")
    return f"{first}-{last}" if dash else str(first)
