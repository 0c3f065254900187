package dev.jupiter.functions;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.SimpleCounter;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Runs a process table function the way Flink's runtime does for one partition key at a time,
 * in-process: per-key state objects, the output collector, and a metric group that records the
 * counters. What it leaves to the end-to-end tests is the wiring (SQL, state backend, TTL).
 */
final class Harness {

    /** Counters by name, as the function registered them. */
    static final class RecordingGroup extends UnregisteredMetricsGroup {
        final Map<String, SimpleCounter> counters = new HashMap<>();

        @Override
        public Counter counter(String name) {
            return counters.computeIfAbsent(name, n -> new SimpleCounter());
        }

        @Override
        public MetricGroup addGroup(String name) {
            return this;
        }

        long count(String name) {
            SimpleCounter counter = counters.get(name);
            return counter == null ? 0 : counter.getCount();
        }
    }

    /** What the function emitted, in order. */
    static final class Output implements Collector<Row> {
        final List<Row> rows = new ArrayList<>();

        @Override
        public void collect(Row row) {
            rows.add(row);
        }

        @Override
        public void close() {}
    }

    private Harness() {}

    /** A valid message as the stateful jobs pass it in: the columns the functions read. */
    static Row message(String sessionId, String status, long timestampMs) {
        Row row = Row.withNames();
        row.setField("session_id", sessionId);
        row.setField("status", status);
        row.setField("timestamp_ms", timestampMs);
        return row;
    }
}
