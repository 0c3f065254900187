"""Per-session keyed state with a time-to-live, as the stateful jobs use it."""

from __future__ import annotations

from pyflink.common.time import Time
from pyflink.datastream.state import StateTtlConfig

from jupiter_common.settings import Settings


def session_ttl(settings: Settings) -> StateTtlConfig:
    """State of a session lives ``SESSION_STATE_TTL_MS`` after its last message (processing
    time; reads refresh it). Expired state is never returned, and is dropped from full
    snapshots and incrementally as the job touches state."""
    return (
        StateTtlConfig.new_builder(Time.milliseconds(settings.session_state_ttl_ms))
        .set_update_type(StateTtlConfig.UpdateType.OnReadAndWrite)
        .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
        .cleanup_full_snapshot()
        .cleanup_incrementally(10, False)
        .build()
    )
