package dev.jupiter.functions;

import java.util.Arrays;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.table.annotation.ArgumentHint;
import org.apache.flink.table.annotation.ArgumentTrait;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.annotation.StateHint;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ProcessTableFunction;
import org.apache.flink.types.Row;

/**
 * events-job: one output row per status change of a session, in arrival order.
 *
 * <p>Called with the valid messages partitioned by session ({@code TABLE valid PARTITION BY
 * session_id}); each input row needs {@code status} and {@code timestamp_ms}. A change row is
 * the input row passed through, plus {@code previous_status} ({@code ''} for the session's
 * first message).
 *
 * <p>The state of a session is its last status and its <em>runs</em>: one per change, the
 * status it changed to and the smallest and largest timestamp of the messages of that status
 * that followed it. A message is
 *
 * <ul>
 *   <li>ignored when a run of its status contains its timestamp: an exact duplicate always
 *       lands there, wherever it arrives, because its original created or widened that run;
 *   <li>part of the current run when its status is the last status (no row);
 *   <li>otherwise a change: a row, and a new run.
 * </ul>
 *
 * <p>So the state grows with the changes of a session, not with its messages. State lives for
 * {@code table.exec.state.ttl} after the session's last message.
 *
 * <p>Counters (group {@code jupiter}): {@code status_changes} (rows emitted) and {@code
 * duplicates_ignored} (messages inside an earlier run of their status).
 */
@FunctionHint(output = @DataTypeHint("ROW<previous_status STRING>"))
public class StatusChanges extends ProcessTableFunction<Row> {

    private static final long serialVersionUID = 1L;

    /** Per-session state: the last status and the runs, oldest first. */
    public static class Runs {
        public String last;
        public String[] statuses = new String[0];
        public long[] firsts = new long[0];
        public long[] lasts = new long[0];
    }

    private transient Counter changes;
    private transient Counter duplicates;

    @Override
    public void open(FunctionContext context) throws Exception {
        bindMetrics(context.getMetricGroup().addGroup("jupiter"));
    }

    /** Registers the counters in {@code group}; tests pass a group that records them. */
    void bindMetrics(MetricGroup group) {
        changes = group.counter("status_changes");
        duplicates = group.counter("duplicates_ignored");
    }

    public void eval(
            @StateHint Runs runs,
            @ArgumentHint({ArgumentTrait.SET_SEMANTIC_TABLE, ArgumentTrait.PASS_COLUMNS_THROUGH})
                    Row input) {
        String status = input.getFieldAs("status");
        long timestamp = input.<Long>getFieldAs("timestamp_ms");
        int count = runs.statuses.length;
        for (int i = 0; i < count; i++) {
            if (runs.statuses[i].equals(status)
                    && runs.firsts[i] <= timestamp
                    && timestamp <= runs.lasts[i]) {
                duplicates.inc();
                return;
            }
        }
        if (status.equals(runs.last)) {
            runs.firsts[count - 1] = Math.min(runs.firsts[count - 1], timestamp);
            runs.lasts[count - 1] = Math.max(runs.lasts[count - 1], timestamp);
            return;
        }
        String previous = runs.last == null ? "" : runs.last;
        runs.statuses = Arrays.copyOf(runs.statuses, count + 1);
        runs.firsts = Arrays.copyOf(runs.firsts, count + 1);
        runs.lasts = Arrays.copyOf(runs.lasts, count + 1);
        runs.statuses[count] = status;
        runs.firsts[count] = timestamp;
        runs.lasts[count] = timestamp;
        runs.last = status;
        changes.inc();
        collect(Row.of(previous));
    }
}
