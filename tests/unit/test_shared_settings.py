"""Settings for no job in particular: what tools acting on every job read (issue 9.7: query.py
used to borrow the movements job's identity)."""

from __future__ import annotations

import pytest

from jupiter_common.errors import SettingsError
from jupiter_common.settings import JOB_NAMES, load_settings, load_shared_settings

ENV = {"KAFKA_BOOTSTRAP": "broker:9092", "CLICKHOUSE_HOST": "ch", "FLINK_CHECKPOINT_DIR": "/c"}


def test_shared_settings_read_the_shared_variables_and_belong_to_no_job() -> None:
    shared = load_shared_settings(ENV)
    assert (shared.kafka_bootstrap, shared.clickhouse_host) == ("broker:9092", "ch")
    for per_job in ("consumer_group", "job_name", "checkpoint_root"):
        with pytest.raises(SettingsError, match="no job"):
            getattr(shared, per_job)


@pytest.mark.parametrize("job", JOB_NAMES)
def test_for_job_is_what_the_job_itself_reads(job: str) -> None:
    assert load_shared_settings(ENV).for_job(job) == load_settings(job, ENV)


def test_for_job_refuses_an_unknown_job() -> None:
    with pytest.raises(SettingsError, match="must be one of"):
        load_shared_settings(ENV).for_job("nope")


def test_shared_settings_still_name_a_bad_variable() -> None:
    with pytest.raises(SettingsError, match="CLICKHOUSE_PORT='x'"):
        load_shared_settings({"CLICKHOUSE_PORT": "x"})
