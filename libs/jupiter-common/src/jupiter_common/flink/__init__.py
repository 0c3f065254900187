"""Flink wiring shared by the jobs: environment, Kafka source, parsing/routing, ClickHouse sink,
dead-letter sink, and the runner that puts a job's dataflow together."""
