"""What the three Jupiter jobs share.

The jobs (base, events, movements) each own one ClickHouse table; everything they have in common
lives here: the session schema and parsing, settings, table definitions, the ClickHouse writer,
the dead-letter record format and the Flink wiring that turns a job's row mapping into a
running pipeline.
"""

__version__ = "0.1.0"
