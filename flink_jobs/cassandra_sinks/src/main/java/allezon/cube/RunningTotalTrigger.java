package allezon.cube;

import org.apache.flink.streaming.api.windowing.triggers.Trigger;
import org.apache.flink.streaming.api.windowing.triggers.TriggerResult;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;

/**
 * Fires a cell's running total at most once per emit interval of processing
 * time while its tags arrive (freshness does not wait for the watermark, so
 * a stream that stops has its last bucket final one interval after its last
 * tag), and once more when the window is released (watermark past its end
 * plus the allowed lateness), just before Flink drops its state.
 *
 * <p>The final firing matters after a restore: a figure written before a
 * crash may hold tags that the replay sends down the late path instead; the
 * final figure, from the restored state, overwrites it.
 *
 * <p>The processing-time timer is rounded up to the interval, so repeated
 * registrations are one timer (no state per window needed to track it); one
 * left after the window's release fires into a cleared window, which emits nothing.
 */
public final class RunningTotalTrigger extends Trigger<Object, TimeWindow> {
    private static final long serialVersionUID = 1L;

    private final long emitIntervalMs;
    private final long allowedLatenessMs;

    public RunningTotalTrigger(long emitIntervalMs, long allowedLatenessMs) {
        this.emitIntervalMs = emitIntervalMs;
        this.allowedLatenessMs = allowedLatenessMs;
    }

    long releaseTime(TimeWindow window) {
        return window.maxTimestamp() + allowedLatenessMs;
    }

    @Override
    public TriggerResult onElement(Object element, long timestamp, TimeWindow window, TriggerContext ctx) {
        long now = ctx.getCurrentProcessingTime();
        ctx.registerProcessingTimeTimer((now / emitIntervalMs + 1) * emitIntervalMs);
        // The window operator's own clean-up timer has the same time: one timer, fired once.
        ctx.registerEventTimeTimer(releaseTime(window));
        return TriggerResult.CONTINUE;
    }

    @Override
    public TriggerResult onProcessingTime(long time, TimeWindow window, TriggerContext ctx) {
        return TriggerResult.FIRE;
    }

    @Override
    public TriggerResult onEventTime(long time, TimeWindow window, TriggerContext ctx) {
        return time == releaseTime(window) ? TriggerResult.FIRE : TriggerResult.CONTINUE;
    }

    @Override
    public void clear(TimeWindow window, TriggerContext ctx) {
        ctx.deleteEventTimeTimer(releaseTime(window));
    }
}
