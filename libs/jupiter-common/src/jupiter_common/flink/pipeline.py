"""What a job's dataflow is made of: SQL over the Kafka source, Jupiter's functions, two sinks.

Every job reads ``KAFKA_TOPIC`` as the table :data:`SOURCE` (``value``, ``partition``,
``offset``) and sends refused records to :data:`DEAD_LETTERS` (the dead-letter topic). What a
job writes to ClickHouse is inserted by a Python function (:mod:`jupiter_common.flink.udfs`)
whose results go to :data:`LANDED`, a sink that discards them. A job's ``build`` function adds
its statements; :meth:`Pipeline.execute` runs them together as one Flink job.

Jupiter's Java functions (``libs/jupiter-functions``) keep per-session state in the JVM; a job
calls them on :meth:`Pipeline.valid_messages` partitioned by session, for example
``status_changes(input => TABLE valid_messages PARTITION BY session_id)``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from pyflink.table import StatementSet, StreamTableEnvironment, TableResult

from jupiter_common.batch_parsing import parse_batch
from jupiter_common.flink.dead_letter_sink import check_dead_letter_topic, dead_letter_table_ddl
from jupiter_common.flink.source import source_ddl
from jupiter_common.flink.udfs import (
    MESSAGE_COLUMNS,
    RowsOf,
    land_rows,
    message_columns,
    parse_and_land,
    parse_sessions,
)
from jupiter_common.settings import Settings
from jupiter_common.tables import TableSpec, quote_identifier

SOURCE: Final = "sessions"
DEAD_LETTERS: Final = "dead_letters"
LANDED: Final = "landed"
VALID_MESSAGES: Final = "valid_messages"

JAVA_FUNCTIONS: Final = {
    "first_started": "dev.jupiter.functions.FirstStarted",
    "status_changes": "dev.jupiter.functions.StatusChanges",
}
"""Jupiter's Java functions by the name SQL calls them."""


class Pipeline:
    """The statements of one job, against ``settings``."""

    def __init__(self, settings: Settings, t_env: StreamTableEnvironment) -> None:
        check_dead_letter_topic(settings)
        self.settings = settings
        self.t_env = t_env
        self._statements: StatementSet = t_env.create_statement_set()
        t_env.execute_sql(source_ddl(settings, SOURCE))
        t_env.execute_sql(dead_letter_table_ddl(settings, DEAD_LETTERS))
        t_env.execute_sql(
            f"CREATE TEMPORARY TABLE {LANDED} (n INT) WITH ('connector' = 'blackhole')"
        )
        for name, java_class in JAVA_FUNCTIONS.items():
            t_env.execute_sql(f"CREATE TEMPORARY FUNCTION {name} AS '{java_class}' LANGUAGE JAVA")

    def valid_messages(self) -> str:
        """Parse every record (in Arrow batches), send refusals to the dead-letter topic, and
        return the name of a view of the valid messages, in Kafka order, with the columns of
        :data:`~jupiter_common.flink.udfs.MESSAGE_FIELDS`."""
        self.t_env.create_temporary_function("parse_sessions", parse_sessions(self.settings))
        # Both consumers read only the function's result, so the planner calls it once.
        self.t_env.execute_sql(
            "CREATE TEMPORARY VIEW parsed AS SELECT p.* FROM"
            f" (SELECT parse_sessions(`value`, `partition`, `offset`) AS p FROM {SOURCE})"
        )
        self._statements.add_insert_sql(
            f"INSERT INTO {DEAD_LETTERS} SELECT dead_letter FROM parsed"
            " WHERE dead_letter IS NOT NULL"
        )
        columns = ", ".join(quote_identifier(name) for name in MESSAGE_COLUMNS)
        self.t_env.execute_sql(
            f"CREATE TEMPORARY VIEW {VALID_MESSAGES} AS SELECT {columns} FROM parsed"
            " WHERE dead_letter IS NULL"
        )
        return VALID_MESSAGES

    def land(self, table: TableSpec, rows: str) -> None:
        """Insert the rows of the query ``rows`` into ``table``. The query's columns must be
        the table's insert columns, by name and in order (alias them: ``current_lat AS lat``):
        the planner's names for them are checked here, when the job is built, and a mismatch
        raises :class:`~jupiter_common.errors.RowColumnsError` before anything is submitted."""
        columns = self.t_env.sql_query(rows).get_resolved_schema().get_column_names()
        table.check_columns(columns, what=f"the columns of the query landed in {table.name}")
        function = f"land_{table.name}"
        self.t_env.create_temporary_function(function, land_rows(self.settings, table))
        arguments = ", ".join(quote_identifier(name) for name in table.insert_columns)
        self._statements.add_insert_sql(
            f"INSERT INTO {LANDED} SELECT {function}({arguments}) FROM ({rows})"
        )

    def parse_and_land(self, table: TableSpec, rows_of: RowsOf) -> None:
        """Parse every record and insert the rows ``rows_of`` makes of the valid messages into
        ``table`` in the same Python call; refusals go to the dead-letter topic.

        ``rows_of`` is tried here on an empty batch, so columns that are not the table's insert
        columns raise :class:`~jupiter_common.errors.RowColumnsError` when the job is built;
        every batch is checked again when it is written."""
        none = np.zeros(0, dtype=np.int64)
        made = rows_of(message_columns(parse_batch([]), none, none, only_valid=True))
        name = getattr(rows_of, "__qualname__", repr(rows_of))
        table.check_columns(made, what=f"the columns {name} makes", ordered=False)
        self.t_env.create_temporary_function(
            "parse_and_land", parse_and_land(self.settings, table, rows_of)
        )
        self._statements.add_insert_sql(
            f"INSERT INTO {DEAD_LETTERS} SELECT dead_letter FROM"
            f" (SELECT parse_and_land(`value`, `partition`, `offset`) AS dead_letter FROM {SOURCE})"
            " WHERE dead_letter IS NOT NULL"
        )

    def execute(self) -> TableResult:
        """Submit the job: every statement added, in one Flink job."""
        return self._statements.execute()
