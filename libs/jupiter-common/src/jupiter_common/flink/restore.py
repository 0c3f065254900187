"""Where a job resumes from: an explicit savepoint/checkpoint, or its own latest one.

Only streaming runs resume. A bounded run starts with fresh state from ``KAFKA_STARTING_OFFSETS``
(by default the group's committed offsets) and commits none of its own: a restored Kafka split
keeps the end offset of the run that wrote it, so a restored bounded run never ends (measured),
and commits would move the group past rows that only the run's checkpoints hold.

A checkpoint is a consistent pair — Kafka offsets and the state built from the records before
them, including the sink's rows not yet inserted. Starting a job *without* its last checkpoint
would resume from the consumer group's committed offsets but drop those buffered rows, so a
job resumes from its newest retained checkpoint or savepoint by default
(``FLINK_RESUME=latest``). Discovery needs a checkpoint directory on a local or mounted file
system (``file://``); elsewhere pass ``FLINK_RESTORE_PATH``, or let the Flink Kubernetes
operator track it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse

from jupiter_common.settings import Settings

log = logging.getLogger(__name__)


def restore_point(settings: Settings) -> str | None:
    """The path to restore from, or None to start fresh from the consumer group's offsets."""
    if settings.flink_restore_path:
        log.info("resuming from %s (FLINK_RESTORE_PATH)", settings.flink_restore_path)
        return settings.flink_restore_path
    if settings.bounded or settings.flink_resume == "none" or not settings.checkpoint_root:
        return None
    root = _local_path(settings.checkpoint_root)
    if root is None:
        log.info("FLINK_RESUME=latest needs a file:// checkpoint dir; starting fresh")
        return None
    found = latest_snapshot(root)
    if found is not None:
        log.info("resuming from %s", found)
        return found.as_uri()
    return None


def latest_snapshot(root: Path) -> Path | None:
    """The newest complete checkpoint (``<job-id>/chk-N``) or savepoint under ``root``."""
    candidates = [*root.glob("*/chk-*/_metadata"), *root.glob("savepoints/*/_metadata")]
    if not candidates:
        return None
    return max(candidates, key=lambda meta: meta.stat().st_mtime_ns).parent


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path)
    return None
