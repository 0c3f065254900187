package dev.jupiter.functions;

import static dev.jupiter.functions.Harness.message;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.Map;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** base-job's semantics: a session's first {@code started} message, once. */
class FirstStartedTest {

    private final Map<String, FirstStarted.Header> state = new HashMap<>();
    private final Harness.RecordingGroup metrics = new Harness.RecordingGroup();
    private final Harness.Output output = new Harness.Output();
    private final FirstStarted function = new FirstStarted();

    @BeforeEach
    void bind() {
        function.bindMetrics(metrics);
        function.setCollector(output);
    }

    /** How many headers {@code messages} made. */
    private int headers(Row... messages) {
        for (Row row : messages) {
            String session = row.getFieldAs("session_id");
            function.eval(state.computeIfAbsent(session, s -> new FirstStarted.Header()), row);
        }
        return output.rows.size();
    }

    @Test
    void theFirstStartedMessageMakesTheHeader() {
        assertEquals(1, headers(message("s1", "started", 1_000), message("s1", "en_route", 2_000)));
        assertEquals(Row.of(true), output.rows.get(0));
        assertEquals(1, metrics.count("headers"));
    }

    @Test
    void aRepeatedOrReplayedStartedMakesNoSecondHeader() {
        assertEquals(
                1,
                headers(
                        message("s1", "started", 1_000),
                        message("s1", "started", 1_000),
                        message("s1", "en_route", 2_000),
                        message("s1", "started", 3_000)));
        assertEquals(1, metrics.count("headers"));
    }

    @Test
    void aLateStartedStillMakesTheHeaderAndSettlesTheCounter() {
        headers(message("s1", "en_route", 2_000), message("s1", "arrived", 3_000));
        assertEquals(0, output.rows.size());
        assertEquals(1, metrics.count("sessions_without_started"));
        headers(message("s1", "started", 1_000));
        assertEquals(1, output.rows.size());
        assertEquals(0, metrics.count("sessions_without_started"));
    }

    @Test
    void eachSessionGetsItsOwnHeader() {
        assertEquals(
                2,
                headers(
                        message("s1", "started", 1_000),
                        message("s2", "en_route", 1_000),
                        message("s2", "started", 2_000),
                        message("s1", "started", 3_000)));
        assertEquals(0, metrics.count("sessions_without_started"));
    }
}
