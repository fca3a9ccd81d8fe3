package allezon.cube;

import static allezon.cube.CubeTesting.CONFIG;
import static allezon.cube.CubeTesting.EMIT_MS;
import static allezon.cube.CubeTesting.LATENESS;
import static allezon.cube.CubeTesting.MINUTE;
import static allezon.cube.CubeTesting.T0;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import allezon.Columns;

import org.apache.flink.api.common.ExecutionConfig;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

/** The cube's windows (MinuteCube.windows) with explicit event and processing times. */
class WindowsTest {
    static final Cells.Key CELL = new Cells.Key("VIEW", (byte) 0, "", "", "");

    static KeyedOneInputStreamOperatorTestHarness<Cells.Key, Cells.Hit, Row> harness() throws Exception {
        return harness(null);
    }

    /** The windows at processing time 0, restored from `checkpoint` when it is not null. */
    static KeyedOneInputStreamOperatorTestHarness<Cells.Key, Cells.Hit, Row> harness(OperatorSubtaskState checkpoint)
            throws Exception {
        KeyedOneInputStreamOperatorTestHarness<Cells.Key, Cells.Hit, Row> h = new KeyedOneInputStreamOperatorTestHarness<>(
                MinuteCube.windows(CONFIG, new ExecutionConfig()), new Cells.KeyOfHit(), MinuteCube.KEY_TYPE);
        h.setup(MinuteCube.ROW_TYPE.createSerializer(new ExecutionConfig()));
        if (checkpoint != null) {
            h.initializeState(checkpoint);
        }
        h.setProcessingTime(0);
        h.open();
        return h;
    }

    static void hit(KeyedOneInputStreamOperatorTestHarness<Cells.Key, Cells.Hit, Row> h, long count, long sum,
                    long timeMs) throws Exception {
        h.processElement(new Cells.Hit(CELL, count, sum), timeMs);
    }

    /** (bucket_ms, cnt, sum_price) of the rows emitted since the last call. */
    static List<List<Long>> emitted(KeyedOneInputStreamOperatorTestHarness<Cells.Key, Cells.Hit, Row> h) {
        List<List<Long>> out = new ArrayList<>();
        for (Object o : h.getOutput()) {
            if (o instanceof StreamRecord) {
                Row r = (Row) ((StreamRecord<?>) o).getValue();
                out.add(List.of((Long) r.getField(Columns.BUCKET_MS), (Long) r.getField(Columns.COUNT),
                        (Long) r.getField(Columns.SUM_PRICE)));
            }
        }
        h.getOutput().clear();
        return out;
    }

    @Test
    void runningTotalsFireOnProcessingTimeWithoutWaitingForTheWatermark() throws Exception {
        var h = harness();
        hit(h, 1, 10, T0 + 5);
        hit(h, 2, 30, T0 + 59_999);
        assertEquals(List.of(), emitted(h));
        h.setProcessingTime(EMIT_MS);
        assertEquals(List.of(List.of(T0, 3L, 40L)), emitted(h));
        h.setProcessingTime(5 * EMIT_MS);
        assertEquals(List.of(), emitted(h), "nothing new, nothing written");
        h.close();
    }

    @Test
    void aLateTagWithinTheLatenessCorrectsTheTotalAndTheReleaseDropsTheState() throws Exception {
        var h = harness();
        hit(h, 1, 10, T0);
        h.setProcessingTime(EMIT_MS);
        emitted(h);
        h.processWatermark(T0 + MINUTE + 30_000);  // past the window's end
        assertEquals(List.of(), emitted(h), "no firing at the window's end: the running total is out already");
        hit(h, 1, 5, T0 + 1);  // late, within the allowed lateness
        h.setProcessingTime(2 * EMIT_MS);
        assertEquals(List.of(List.of(T0, 2L, 15L)), emitted(h));
        assertTrue(h.numKeyedStateEntries() > 0);

        h.processWatermark(T0 + MINUTE - 1 + LATENESS);  // released: its figure is written already
        assertEquals(List.of(), emitted(h));
        assertEquals(0, h.numKeyedStateEntries());
        h.setProcessingTime(10 * EMIT_MS);
        assertEquals(0, h.numKeyedStateEntries(), "a timer left after the release made state");
        h.close();
    }

    @Test
    void aChangeNotYetWrittenIsWrittenAtTheRelease() throws Exception {
        var h = harness();
        hit(h, 1, 10, T0);
        h.processWatermark(T0 + MINUTE - 1 + LATENESS);  // before the processing-time firing
        assertEquals(List.of(List.of(T0, 1L, 10L)), emitted(h));
        h.close();
    }

    @Test
    void aRestoredWindowWritesItsFigureAtTheRelease() throws Exception {
        var h = harness();
        hit(h, 2, 20, T0);
        h.setProcessingTime(EMIT_MS);
        emitted(h);
        OperatorSubtaskState checkpoint = h.snapshot(1, 1);
        h.close();

        // Restored: figures written after the checkpoint may hold tags the replay sends down the late path.
        var restored = harness(checkpoint);
        restored.processWatermark(T0 + MINUTE - 1 + LATENESS);
        assertEquals(List.of(List.of(T0, 2L, 20L)), emitted(restored));
        restored.close();
    }

    @Test
    void bucketsBefore1970AndAfter2038AreMinutesLikeAnyOther() throws Exception {
        var h = harness();
        hit(h, 1, 1, -1);  // 1969-12-31T23:59:59.999Z
        hit(h, 1, 2, -MINUTE);
        long after2038 = 2_240_524_800_000L + 61_000;  // 2040-12-31, past the 32-bit seconds
        hit(h, 1, 4, after2038);
        h.setProcessingTime(EMIT_MS);
        List<List<Long>> rows = emitted(h);
        assertEquals(2, rows.size(), rows.toString());  // -1 ms and -60,000 ms share the minute before 1970
        assertTrue(rows.contains(List.of(-MINUTE, 2L, 3L)), rows.toString());
        assertTrue(rows.contains(List.of(CubeConfig.bucketOf(after2038), 1L, 4L)), rows.toString());
        h.close();
    }
}
