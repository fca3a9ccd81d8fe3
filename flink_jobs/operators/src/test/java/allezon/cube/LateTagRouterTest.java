package allezon.cube;

import static allezon.cube.CubeTesting.CONFIG;
import static allezon.cube.CubeTesting.LATENESS;
import static allezon.cube.CubeTesting.MINUTE;
import static allezon.cube.CubeTesting.RETENTION;
import static allezon.cube.CubeTesting.T0;
import static allezon.cube.CubeTesting.tag;
import static org.junit.jupiter.api.Assertions.assertEquals;

import allezon.Columns;

import org.apache.flink.api.common.ExecutionConfig;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Queue;

/** Which tags go to the windows, to the late path, or nowhere. */
class LateTagRouterTest {
    static final LateTagRouter ROUTER = new LateTagRouter(CONFIG, CubeTesting.TAG_TYPE);

    static OneInputStreamOperatorTestHarness<Row, Row> harness(OperatorSubtaskState restore) throws Exception {
        OneInputStreamOperatorTestHarness<Row, Row> h = new OneInputStreamOperatorTestHarness<>(
                ROUTER, CubeTesting.TAG_TYPE.createSerializer(new ExecutionConfig()));
        h.setup(CubeTesting.TAG_TYPE.createSerializer(new ExecutionConfig()));
        if (restore != null) {
            h.initializeState(restore);
        }
        h.open();
        return h;
    }

    static List<Long> offsets(Queue<?> records) {
        List<Long> out = new ArrayList<>();
        for (Object o : records) {
            if (o instanceof StreamRecord) {
                out.add((Long) ((Row) ((StreamRecord<?>) o).getValue()).getField(Columns.KAFKA_OFFSET));
            }
        }
        return out;
    }

    static void send(OneInputStreamOperatorTestHarness<Row, Row> h, long timeMs, long offset) throws Exception {
        h.processElement(tag(timeMs, 1, offset), timeMs);
    }

    @Test
    void routesByTheBucketsReleaseAndRetention() throws Exception {
        var h = harness(null);
        h.processWatermark(T0 + MINUTE - 1 + LATENESS);  // T0's bucket just released
        send(h, T0 + MINUTE, 1);  // next bucket: windows
        send(h, T0 + 59_999, 2);  // released bucket: late path
        send(h, T0 + MINUTE - 1 + LATENESS - RETENTION - 1, 3);  // past the retention: dropped
        send(h, T0 + MINUTE + LATENESS - RETENTION, 4);  // the oldest retained bucket: late path
        assertEquals(List.of(1L), offsets(h.getOutput()));
        assertEquals(List.of(2L, 4L), offsets(h.getSideOutput(ROUTER.veryLate)));
        h.close();
    }

    @Test
    void aReleasedBucketStaysReleasedAfterARestoreBeforeAnyWatermark() throws Exception {
        var h = harness(null);
        h.processWatermark(T0 + MINUTE - 1 + LATENESS);
        OperatorSubtaskState snapshot = h.snapshot(1, 1);
        h.close();

        var restored = harness(snapshot);  // a restarted job: no watermark yet
        send(restored, T0, 5);
        assertEquals(List.of(), offsets(restored.getOutput()), "a window holding only this tag would "
                + "overwrite the bucket's complete total");
        assertEquals(List.of(5L), offsets(restored.getSideOutput(ROUTER.veryLate)));
        restored.close();
    }
}
