"""Where the local tools keep their files: the repository they were checked out in.

jupiter-local is a dev-only distribution installed editable from the repository (hatch's
workspace), so the repository root is found from this file; the tools' state lives under
``.jupiter/`` and the fetched jars under ``.cache/`` there."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[4]
"""The repository root: infra/local/src/jupiter_local/paths.py is four levels below it."""
