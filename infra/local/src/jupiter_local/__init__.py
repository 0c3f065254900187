"""Jupiter's local tooling (dev-only, never installed in images): the local Kafka broker, the
ClickHouse HTTP endpoint over chDB, the session cluster, local job runs, the synthetic generator
and producer, the demo, the benchmark and the chaos command. Each tool runs as
``python -m jupiter_local.<tool>`` (the hatch scripts in the root pyproject.toml)."""
