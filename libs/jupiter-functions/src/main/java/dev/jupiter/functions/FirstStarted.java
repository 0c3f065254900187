package dev.jupiter.functions;

import org.apache.flink.table.annotation.ArgumentHint;
import org.apache.flink.table.annotation.ArgumentTrait;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.annotation.StateHint;
import org.apache.flink.table.functions.ProcessTableFunction;
import org.apache.flink.types.Row;

/**
 * base-job: a session's first {@code started} message, once.
 *
 * <p>Called with the valid messages partitioned by session ({@code TABLE valid PARTITION BY
 * session_id}); each input row needs {@code status}. The first message with status {@code
 * started} is passed through; every later message of the session, a repeated or replayed
 * {@code started} included, is not. The state of a session is one flag, rewritten by every
 * message so that it lives for {@code table.exec.state.ttl} after the session's last message.
 */
@FunctionHint(output = @DataTypeHint("ROW<header_written BOOLEAN>"))
public class FirstStarted extends ProcessTableFunction<Row> {

    private static final long serialVersionUID = 1L;

    static final String STARTED = "started";

    /** Per-session state. */
    public static class Header {
        public boolean written;
    }

    public void eval(
            @StateHint Header header,
            @ArgumentHint({ArgumentTrait.SET_SEMANTIC_TABLE, ArgumentTrait.PASS_COLUMNS_THROUGH})
                    Row message) {
        if (header.written || !STARTED.equals(message.getFieldAs("status"))) {
            return;
        }
        header.written = true;
        collect(Row.of(true));
    }
}
