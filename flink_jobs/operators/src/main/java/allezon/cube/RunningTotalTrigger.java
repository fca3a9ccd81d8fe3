package allezon.cube;

import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.windowing.triggers.Trigger;
import org.apache.flink.streaming.api.windowing.triggers.TriggerResult;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;

import java.util.concurrent.ThreadLocalRandom;

/**
 * Fires a cell's running total at most once per emit interval of processing
 * time while its tags arrive (freshness does not wait for the watermark, so
 * a stream that stops has its last bucket final one interval after its last
 * tag), and once more when the window is released (watermark past its end
 * plus the allowed lateness), just before Flink drops its state, unless the
 * figure this run last wrote is still the window's.
 *
 * <p>The final firing matters after a restore: a figure written before a
 * crash may hold tags that the replay sends down the late path instead; the
 * final figure, from the restored state, overwrites it. A window remembers
 * the run that last wrote it unchanged (a random id per task attempt), so a
 * restored window fires at release and an unchanged one of this run does not:
 * most cells get one tag, and a second write of each would double the cube's writes.
 *
 * <p>Per window one marker: 0 = changed since its last write, a run id =
 * written unchanged by that run, none = no window (released). The
 * processing-time timer is rounded up to the interval, so repeated
 * registrations are one timer; one left after the release finds no marker
 * and does nothing.
 */
public final class RunningTotalTrigger extends Trigger<Object, TimeWindow> {
    private static final long serialVersionUID = 1L;

    private final long emitIntervalMs;
    private final long allowedLatenessMs;
    private static final long CHANGED = 0;
    private final ValueStateDescriptor<Long> marker = new ValueStateDescriptor<>("written-unchanged-by", Types.LONG);
    private transient long run;

    public RunningTotalTrigger(long emitIntervalMs, long allowedLatenessMs) {
        this.emitIntervalMs = emitIntervalMs;
        this.allowedLatenessMs = allowedLatenessMs;
    }

    long releaseTime(TimeWindow window) {
        return window.maxTimestamp() + allowedLatenessMs;
    }

    private long run() {
        if (run == 0) {
            run = ThreadLocalRandom.current().nextLong() | 1;
        }
        return run;
    }

    @Override
    public TriggerResult onElement(Object element, long timestamp, TimeWindow window, TriggerContext ctx)
            throws Exception {
        ValueState<Long> written = ctx.getPartitionedState(marker);
        Long by = written.value();
        if (by == null || by != CHANGED) {
            written.update(CHANGED);
        }
        long now = ctx.getCurrentProcessingTime();
        ctx.registerProcessingTimeTimer((now / emitIntervalMs + 1) * emitIntervalMs);
        // The window operator's own clean-up timer has the same time: one timer, fired once.
        ctx.registerEventTimeTimer(releaseTime(window));
        return TriggerResult.CONTINUE;
    }

    @Override
    public TriggerResult onProcessingTime(long time, TimeWindow window, TriggerContext ctx) throws Exception {
        ValueState<Long> written = ctx.getPartitionedState(marker);
        Long by = written.value();
        if (by == null || by != CHANGED) {
            return TriggerResult.CONTINUE;  // released already, or nothing new since the last write
        }
        written.update(run());
        return TriggerResult.FIRE;
    }

    @Override
    public TriggerResult onEventTime(long time, TimeWindow window, TriggerContext ctx) throws Exception {
        if (time != releaseTime(window)) {
            return TriggerResult.CONTINUE;
        }
        Long by = ctx.getPartitionedState(marker).value();
        return by != null && by == run() ? TriggerResult.CONTINUE : TriggerResult.FIRE;
    }

    @Override
    public void clear(TimeWindow window, TriggerContext ctx) {
        ctx.deleteEventTimeTimer(releaseTime(window));
        ctx.getPartitionedState(marker).clear();
    }
}
