package dev.jupiter.functions;

import static dev.jupiter.functions.Harness.message;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** events-job's semantics: one row per status change, duplicates and replays ignored. */
class StatusChangesTest {

    private final Map<String, StatusChanges.Runs> state = new HashMap<>();
    private final Harness.RecordingGroup metrics = new Harness.RecordingGroup();
    private final Harness.Output output = new Harness.Output();
    private final StatusChanges function = new StatusChanges();

    @BeforeEach
    void bind() {
        function.bindMetrics(metrics);
        function.setCollector(output);
    }

    /** The previous statuses emitted for {@code messages}, in order. */
    private List<String> changes(Row... messages) {
        for (Row row : messages) {
            String session = row.getFieldAs("session_id");
            function.eval(state.computeIfAbsent(session, s -> new StatusChanges.Runs()), row);
        }
        return output.rows.stream().map(r -> (String) r.getField(0)).toList();
    }

    @Test
    void theFirstMessageIsAChangeFromNothing() {
        assertEquals(List.of(""), changes(message("s1", "started", 1_000)));
        assertEquals(1, metrics.count("status_changes"));
    }

    @Test
    void repeatsOfTheCurrentStatusAreNoChange() {
        List<String> previous =
                changes(
                        message("s1", "started", 1_000),
                        message("s1", "en_route", 2_000),
                        message("s1", "en_route", 3_000),
                        message("s1", "en_route", 4_000),
                        message("s1", "arrived", 5_000));
        assertEquals(List.of("", "started", "en_route"), previous);
        assertEquals(0, metrics.count("duplicates_ignored"));
    }

    @Test
    void anExactDuplicateIsIgnoredWhereverItArrives() {
        List<String> previous =
                changes(
                        message("s1", "started", 1_000),
                        message("s1", "en_route", 2_000),
                        message("s1", "started", 1_000),
                        message("s1", "arrived", 3_000),
                        message("s1", "en_route", 2_000));
        assertEquals(List.of("", "started", "en_route"), previous);
        assertEquals(2, metrics.count("duplicates_ignored"));
    }

    @Test
    void aStatusThatComesBackLaterIsANewChange() {
        List<String> previous =
                changes(
                        message("s1", "en_route", 1_000),
                        message("s1", "paused", 2_000),
                        message("s1", "en_route", 3_000));
        assertEquals(List.of("", "en_route", "paused"), previous);
    }

    @Test
    void sessionsAreIndependent() {
        List<String> previous =
                changes(
                        message("s1", "started", 1_000),
                        message("s2", "started", 1_000),
                        message("s1", "en_route", 2_000));
        assertEquals(List.of("", "", "started"), previous);
    }

    @Test
    void stateGrowsWithChangesNotMessages() {
        changes(message("s1", "started", 0));
        for (long t = 1; t <= 1_000; t++) {
            changes(message("s1", "en_route", t));
        }
        StatusChanges.Runs runs = state.get("s1");
        assertEquals(2, runs.statuses.length);
        assertEquals(1, runs.firsts[1]);
        assertEquals(1_000, runs.lasts[1]);
    }

    @Test
    void theRowCarriesOnlyThePreviousStatus() {
        changes(message("s1", "started", 1_000), message("s1", "ended", 2_000));
        Row change = output.rows.get(1);
        assertEquals(1, change.getArity());
        assertEquals("started", change.getField(0));
    }
}
