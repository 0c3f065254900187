"""The chaos suite's hostile-record generator (tests/hostile.py): deterministic, every kind it
means to be refused is refused by ``parse_session`` (and the odd valid ones accepted), the huge
ones about as large as asked, and the batch parser gives the same verdicts on them."""

from __future__ import annotations

from collections import Counter

from hostile import HUGE_BYTES, ODD_VALID, REFUSED, hostile_records, mix

from jupiter_common.batch_parsing import parse_batch
from jupiter_common.parsing import Rejection, parse_session
from jupiter_local.synthetic import GeneratorConfig, generate


def test_the_same_seed_gives_the_same_records_and_another_seed_others() -> None:
    assert hostile_records(300, seed=5) == hostile_records(300, seed=5)
    assert hostile_records(300, seed=5) != hostile_records(300, seed=6)


def test_every_kind_is_made_and_refused_as_meant() -> None:
    records = hostile_records(1_500, seed=11, huge=2, huge_bytes=200_000)
    kinds = Counter(r.kind for r in records)
    assert set(kinds) == {*REFUSED, "huge_field", "large_field", ODD_VALID}
    assert kinds["huge_field"] == 2
    wrong = [r for r in records if isinstance(parse_session(r.value), Rejection) != r.refused]
    assert not wrong, [(r.kind, (r.value or b"")[:200]) for r in wrong[:5]]
    assert any(r.value is None for r in records) and any(r.value == b"" for r in records)
    reasons = {parse_session(r.value).reason for r in records if r.refused}  # type: ignore[union-attr]
    assert len(reasons) == 10, reasons  # every rejection reason


def test_huge_records_have_the_size_asked() -> None:
    records = hostile_records(4, seed=12, huge=4)
    assert all(HUGE_BYTES - 100 < len(r.value or b"") <= HUGE_BYTES for r in records)


def test_the_batch_parser_agrees_with_parse_session_on_hostile_records_among_valid_ones() -> None:
    hostile = hostile_records(1_500, seed=13)
    valid = [(r.key, r.value) for r in generate(GeneratorConfig(sessions=60, seed=13)).records]
    records, where = mix(valid, hostile, seed=13)
    assert [records[i][1] for i in where] == [r.value for r in hostile]
    assert [v for i, (_, v) in enumerate(records) if i not in set(where)] == [v for _, v in valid]
    values = [value for _, value in records]
    batch = parse_batch(values)
    expected = [parse_session(value) for value in values]
    refused = {i: r for i, r in enumerate(expected) if isinstance(r, Rejection)}
    assert dict(batch.rejections) == refused
    assert [bool(v) for v in batch.valid] == [i not in refused for i in range(len(values))]
