"""The pure pieces of the benchmark (jupiter_local/bench.py): stream sizing, rates, ratios,
latency percentiles, the printed tables and the JSON records. No Kafka, no processes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

JOBS: Final = ("movements", "base", "events")
ENGINE: Final = "engine"
LABELS: Final = {
    "movements": "movements-job",
    "base": "base-job",
    "events": "events-job",
    ENGINE: "Kafka engine (chDB)",
}
RECORD_KEYS: Final = (
    "benchmark",
    "timestamp",
    "command",
    "stream",
    "results",
    "machine",
    "git_commit",
)


def sessions_for(messages: int, pings: int, cancel_ratio: float) -> int:
    """Sessions whose generated stream holds about ``messages`` messages.

    A completed session emits ``pings + 3`` messages on average (started, en_route pings,
    arrived, completed); a cancelled one ``started``, on average ``((pings - 1) // 2) / 2``
    en_route pings and ``cancelled``.
    """
    cancelled = max(0, (pings - 1) // 2) / 2 + 2
    per_session = (1 - cancel_ratio) * (pings + 3) + cancel_ratio * cancelled
    return max(1, round(messages / per_session))


def _per_second(amount: float, seconds: float | None) -> float | None:
    return amount / seconds if seconds is not None and seconds > 0 else None


def throughput(
    messages: int, full_run_seconds: float, empty_run_seconds: float
) -> tuple[float | None, float | None]:
    """A job's (messages/s net of the fixed cost, messages/s including it). The net rate is
    ``None`` when the full run took no longer than the empty one (a run too small to measure)."""
    return (
        _per_second(messages, full_run_seconds - empty_run_seconds),
        _per_second(messages, full_run_seconds),
    )


def steady_throughput(
    messages: int,
    rows: int,
    first_block_rows: int,
    seconds: float | None,
    first_block_seconds: float | None,
) -> tuple[float | None, float | None]:
    """(messages/s after the first landed block, messages/s including start-up) of a run that
    landed ``rows`` rows, ``first_block_rows`` of them in its first block (insert), the first
    block ``first_block_seconds`` and the last row ``seconds`` after the start.

    After the first block: the messages after it (their share of the messages taken equal to
    the rows' share) over the time from the first block to the last row; ``None`` when
    everything landed in the first block. This is the Kafka engine's net rate (nothing lands
    from an empty topic, so its time to the first block is its fixed cost) and a job's steady
    rate. Including start-up: ``messages / seconds``."""
    if seconds is None or first_block_seconds is None or rows <= 0:
        return None, None
    later = messages * (rows - first_block_rows) / rows
    return _per_second(later, seconds - first_block_seconds), _per_second(messages, seconds)


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline <= 0:
        return None
    return value / baseline


def mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def per_1k(cpu_seconds: float | None, messages: int) -> float | None:
    return None if cpu_seconds is None or messages <= 0 else cpu_seconds * 1000 / messages


def percentile(values: Sequence[int], q: float) -> int | None:
    """The ``q``-th percentile (0 < q <= 100) by the nearest-rank method: the smallest value
    with at least ``q`` % of the values at or below it. ``values`` must be sorted."""
    if not values:
        return None
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[rank - 1]


def latency_summary(latencies_ms: Sequence[int]) -> dict[str, int | None]:
    ordered = sorted(latencies_ms)
    return {
        "rows": len(ordered),
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else None,
    }


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def bench_record(
    benchmark: str,
    *,
    timestamp: str,
    command: str,
    stream: Mapping[str, Any],
    results: Mapping[str, Any],
    machine: Mapping[str, object],
    git_commit: str,
) -> dict[str, Any]:
    """The JSON record of one benchmark run (keys in :data:`RECORD_KEYS` order); ``results``
    holds one entry per job (and ``engine``), ``stream`` what was produced."""
    return {
        "benchmark": benchmark,
        "timestamp": timestamp,
        "command": command,
        "stream": dict(stream),
        "results": dict(results),
        "machine": dict(machine),
        "git_commit": git_commit,
    }


# --------------------------------------------------------------------------- printing


def failure(job: str, error: Exception, lines: int = 8) -> str:
    """One short paragraph for a failed run: the error's first line and its last ``lines``
    lines, Java stack frames left out."""
    text = [line for line in str(error).splitlines() if line.strip()]
    kept = [line for line in text[1:] if not line.lstrip().startswith(("at ", "... "))]
    return "\n    ".join([f"{job}-job FAILED: {text[0] if text else error!r}", *kept[-lines:]])


def fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    """``12,345`` / ``0.35`` / ``n/a``, with an optional unit after a space."""
    if value is None:
        return "n/a"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, padded to line up in a terminal: the first column left-aligned, the
    others right-aligned."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)
    )
    return "\n".join([line(header), rule + "|", *(line(r) for r in rows)])


THROUGHPUT_HEADER: Final = (
    "job",
    "msg/s net",
    "msg/s incl. start-up",
    "msg/s steady",
    "ratio net",
    "ratio incl.",
    "ratio steady",
    "peak RSS",
    "CPU s/1k msg net / incl.",
    "rows landed",
)
LATENCY_HEADER: Final = (
    "job",
    "msg/s",
    "rows after warm-up",
    "p50 ms",
    "p99 ms",
    "max ms",
    "peak RSS",
    "CPU s/1k msg",
    "rows landed",
)
CHECKPOINT_HEADER: Final = (
    "job",
    "msg/session",
    "sessions",
    "messages",
    "checkpoint",
    "checkpoint size",
    "bytes/session",
    "savepoint size",
)


def throughput_rows(results: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """One table row per entry of ``results`` (job or engine), as :func:`throughput_result`
    and the engine's summary shape them."""
    rows = []
    for name, r in results.items():
        rows.append(
            [
                LABELS[name],
                fmt(r["messages_per_second"]),
                fmt(r["messages_per_second_incl_startup"]),
                fmt(r["messages_per_second_steady"]),
                fmt(r["ratio_net"], digits=2),
                fmt(r["ratio_incl"], digits=2),
                fmt(r["ratio_steady"], digits=2),
                fmt(r["peak_rss_mb"], "MB"),
                f"{fmt(r['cpu_seconds_per_1k_messages_net'], digits=3)}"
                f" / {fmt(r['cpu_seconds_per_1k_messages'], digits=3)}",
                f"{r['rows_landed']:,} of {r['rows_expected']:,}",
            ]
        )
    return rows


def latency_rows(results: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    return [
        [
            LABELS[name],
            fmt(r["produce_rate"]),
            fmt(r["rows"]),
            fmt(r["p50_ms"]),
            fmt(r["p99_ms"]),
            fmt(r["max_ms"]),
            fmt(r["peak_rss_mb"], "MB"),
            fmt(r["cpu_seconds_per_1k_messages"], digits=3),
            f"{r['rows_landed']:,} of {r['rows_expected']:,}",
        ]
        for name, r in results.items()
    ]


def _mib(size: int | None) -> str:
    return fmt(None if size is None else size / 2**20, "MiB", 1)


def checkpoint_rows(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[list[str]]:
    """One row per job and stream: ``results[job][messages per session]``."""
    return [
        [
            LABELS[name],
            fmt(r["messages_per_session"], digits=1),
            fmt(r["sessions"]),
            fmt(r["messages"]),
            r["checkpoint"] or "none",
            _mib(r["checkpoint_bytes"]),
            fmt(r["bytes_per_session"]),
            _mib(r["savepoint_bytes"]),
        ]
        for name, streams in results.items()
        for r in streams.values()
    ]


def throughput_result(
    *,
    messages: int,
    rows_expected: int,
    rows_landed: int,
    empty_run_seconds: float,
    full_run_seconds: float,
    first_block_seconds: float | None,
    first_block_rows: int,
    last_row_seconds: float | None,
    empty_cpu_seconds: float,
    cpu_seconds: float,
    peak_rss_mb: float | None,
) -> dict[str, Any]:
    """A job's figures in the throughput run (its ratios come from :func:`ratios`)."""
    net, incl = throughput(messages, full_run_seconds, empty_run_seconds)
    steady, _ = steady_throughput(
        messages, rows_landed, first_block_rows, last_row_seconds, first_block_seconds
    )
    return {
        "rows_expected": rows_expected,
        "rows_landed": rows_landed,
        "empty_run_seconds": round(empty_run_seconds, 2),
        "full_run_seconds": round(full_run_seconds, 2),
        "first_block_seconds": rounded(first_block_seconds, 2),
        "first_block_rows": first_block_rows,
        "last_row_seconds": rounded(last_row_seconds, 2),
        "messages_per_second": rounded(net),
        "messages_per_second_incl_startup": rounded(incl),
        "messages_per_second_steady": rounded(steady),
        "peak_rss_mb": rounded(peak_rss_mb),
        "empty_cpu_seconds": round(empty_cpu_seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "cpu_seconds_per_1k_messages": rounded(per_1k(cpu_seconds, messages), 4),
        "cpu_seconds_per_1k_messages_net": rounded(
            per_1k(cpu_seconds - empty_cpu_seconds, messages), 4
        ),
    }


def ratios(job: Mapping[str, Any], engine: Mapping[str, Any] | None) -> dict[str, float | None]:
    """A job's rates over the Kafka engine's: net over net, including start-up over including
    start-up, steady over the engine's net (the same definition); ``None`` without an engine
    run or a measurable rate."""
    engine = engine or {}

    def over(key: str, engine_key: str) -> float | None:
        return rounded(ratio(job[key], engine.get(engine_key)), 3)

    return {
        "ratio_net": over("messages_per_second", "messages_per_second"),
        "ratio_incl": over("messages_per_second_incl_startup", "messages_per_second_incl_startup"),
        "ratio_steady": over("messages_per_second_steady", "messages_per_second"),
    }


def engine_run_result(
    *,
    messages: int,
    rows_expected: int,
    rows_landed: int,
    seconds: float | None,
    first_block_seconds: float | None,
    first_block_rows: int,
    cpu_seconds: float,
    cpu_seconds_at_first_block: float | None,
    peak_rss_mb: float | None,
) -> dict[str, Any]:
    """One Kafka engine run's figures (see :func:`steady_throughput`). Its net CPU time is the
    CPU time after the first block over the messages after it."""
    net, incl = steady_throughput(
        messages, rows_landed, first_block_rows, seconds, first_block_seconds
    )
    later = messages * (rows_landed - first_block_rows) / rows_landed if rows_landed else 0
    cpu_net = (
        None
        if cpu_seconds_at_first_block is None or later <= 0
        else (cpu_seconds - cpu_seconds_at_first_block) * 1000 / later
    )
    return {
        "rows_expected": rows_expected,
        "rows_landed": rows_landed,
        "seconds": rounded(seconds, 2),
        "first_block_seconds": rounded(first_block_seconds, 2),
        "first_block_rows": first_block_rows,
        "messages_per_second": rounded(net),
        "messages_per_second_incl_startup": rounded(incl),
        "peak_rss_mb": rounded(peak_rss_mb),
        "cpu_seconds": round(cpu_seconds, 2),
        "cpu_seconds_per_1k_messages": rounded(per_1k(cpu_seconds, messages), 4),
        "cpu_seconds_per_1k_messages_net": rounded(cpu_net, 4),
    }


def engine_summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The engine's figures over its runs: rates and CPU time are the means of the runs', the
    peak RSS the highest, the rows the fewest landed; each run's own figures under ``runs``."""

    def avg(key: str, digits: int) -> float | None:
        return rounded(mean([r[key] for r in runs]), digits)

    rss = [r["peak_rss_mb"] for r in runs if r["peak_rss_mb"] is not None]
    return {
        "rows_expected": runs[0]["rows_expected"],
        "rows_landed": min(r["rows_landed"] for r in runs),
        "messages_per_second": avg("messages_per_second", 1),
        "messages_per_second_incl_startup": avg("messages_per_second_incl_startup", 1),
        "messages_per_second_steady": avg("messages_per_second", 1),
        "ratio_net": 1.0,
        "ratio_incl": 1.0,
        "ratio_steady": 1.0,
        "peak_rss_mb": max(rss) if rss else None,
        "cpu_seconds_per_1k_messages": avg("cpu_seconds_per_1k_messages", 4),
        "cpu_seconds_per_1k_messages_net": avg("cpu_seconds_per_1k_messages_net", 4),
        "runs": list(runs),
    }
