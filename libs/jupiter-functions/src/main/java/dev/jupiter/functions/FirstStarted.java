package dev.jupiter.functions;

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
 * base-job: a session's first {@code started} message, once.
 *
 * <p>Called with the valid messages partitioned by session ({@code TABLE valid PARTITION BY
 * session_id}); each input row needs {@code status}. The first message with status {@code
 * started} is passed through; every later message of the session, a repeated or replayed
 * {@code started} included, is not. The state of a session is two flags; like all state of a
 * process table function it is written back after every message, so it lives for {@code
 * table.exec.state.ttl} after the session's last message.
 *
 * <p>Counters (group {@code jupiter}): {@code headers}, and {@code sessions_without_started}:
 * sessions seen without a {@code started} message so far (it goes down when a late one comes).
 */
@FunctionHint(output = @DataTypeHint("ROW<header_written BOOLEAN>"))
public class FirstStarted extends ProcessTableFunction<Row> {

    private static final long serialVersionUID = 1L;

    static final String STARTED = "started";

    /** Per-session state. */
    public static class Header {
        public boolean seen;
        public boolean written;
    }

    private transient Counter headers;
    private transient Counter withoutStarted;

    @Override
    public void open(FunctionContext context) throws Exception {
        bindMetrics(context.getMetricGroup().addGroup("jupiter"));
    }

    /** Registers the counters in {@code group}; tests pass a group that records them. */
    void bindMetrics(MetricGroup group) {
        headers = group.counter("headers");
        withoutStarted = group.counter("sessions_without_started");
    }

    public void eval(
            @StateHint Header header,
            @ArgumentHint({ArgumentTrait.SET_SEMANTIC_TABLE, ArgumentTrait.PASS_COLUMNS_THROUGH})
                    Row input) {
        boolean started = STARTED.equals(input.getFieldAs("status"));
        boolean firstMessage = !header.seen;
        header.seen = true;
        if (header.written || !started) {
            if (firstMessage && !started) {
                withoutStarted.inc();
            }
            return;
        }
        if (!firstMessage) {
            withoutStarted.dec();
        }
        header.written = true;
        headers.inc();
        collect(Row.of(true));
    }
}
