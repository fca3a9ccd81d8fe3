package allezon.sinks;

import static allezon.cube.CubeTesting.MINUTE;
import static allezon.cube.CubeTesting.RETENTION;
import static allezon.cube.CubeTesting.STORED_MASKS;
import static allezon.cube.CubeTesting.T0;
import static allezon.cube.CubeTesting.tag;
import static allezon.sinks.SinkTesting.config;
import static allezon.sinks.SinkTesting.correctionHarness;
import static allezon.sinks.SinkTesting.cubeHarness;
import static allezon.sinks.SinkTesting.cubeRow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.driver.core.SimpleStatement;

import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

/** Correction rows wait for their checkpoint; expired buckets are deleted by event time. */
class LatePathTest {
    static List<SimpleStatement> rows(List<FakeTransport.Sent> sent) {
        List<SimpleStatement> out = new ArrayList<>();
        for (FakeTransport.Sent s : sent) {
            out.addAll(s.rows());
        }
        return out;
    }

    @Test
    void correctionsAreWrittenOnlyOnceTheirCheckpointCompleted() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = correctionHarness(config(), cassandra, null);
        sink.processElement(tag(T0 + 7, "BUY", "o", "b", "c", 42, 3, 1234), T0 + 7);
        sink.snapshot(1, 1);
        cassandra.assertNothingSent();  // a replay may yet decide this tag goes to its window

        sink.notifyOfCompletedCheckpoint(1);
        List<FakeTransport.Sent> sent = new ArrayList<>();
        for (int i = 0; i < STORED_MASKS.length; i++) {
            sent.add(cassandra.next());  // one per partition (action, dims, bucket)
        }
        List<SimpleStatement> written = rows(sent);
        assertEquals(STORED_MASKS.length, written.size(), "one correction per cell of the bucket");
        for (SimpleStatement s : written) {
            assertTrue(s.getQueryString().contains("late_partition, late_offset, count, sum_price"), s.getQueryString());
            // (action, dims, bucket_ms, origin, brand_id, category_id, late_partition, late_offset, price)
            assertEquals("BUY", s.getObject(0));
            assertEquals(T0, s.getObject(2));
            assertEquals(3, s.getObject(6));
            assertEquals(1234L, s.getObject(7));
            assertEquals(42L, s.getObject(8));
        }
        SinkTesting.close(sink, cassandra);
    }

    @Test
    void correctionsOfACompletedCheckpointAreWrittenAfterARestore() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = correctionHarness(config(), cassandra, null);
        sink.processElement(tag(T0, 1, 9), T0);
        OperatorSubtaskState completed = sink.snapshot(1, 1);
        // The job dies before the notification: nothing written yet.
        cassandra.assertNothingSent();

        FakeTransport restarted = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> again = correctionHarness(config(), restarted, completed);
        List<FakeTransport.Sent> sent = new ArrayList<>();
        for (int i = 0; i < STORED_MASKS.length; i++) {
            sent.add(restarted.next());
        }
        assertEquals(STORED_MASKS.length, rows(sent).size());
        SinkTesting.close(again, restarted);
    }

    @Test
    void correctionsOfOneBucketGoInBatchesOfOnePartition() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = correctionHarness(config(), cassandra, null);
        for (int i = 0; i < 5; i++) {
            sink.processElement(tag(T0 + i, "VIEW", "o" + i, "b", "c", 1, 0, i), T0 + i);
        }
        sink.snapshot(1, 1);
        sink.notifyOfCompletedCheckpoint(1);
        List<FakeTransport.Sent> sent = new ArrayList<>();
        for (int i = 0; i < STORED_MASKS.length; i++) {
            sent.add(cassandra.next());
        }
        for (FakeTransport.Sent s : sent) {
            List<SimpleStatement> batch = s.rows();
            assertEquals(5, batch.size());
            assertTrue(batch.stream().allMatch(r -> r.getObject(1).equals(batch.get(0).getObject(1))), "mixed partitions");
        }
        SinkTesting.close(sink, cassandra);
    }

    @Test
    void bucketsPastTheRetentionAreDeletedWholePartitions() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = cubeHarness(config(), cassandra);
        sink.processElement(cubeRow(RowKind.INSERT, T0, "VIEW", 0, "", "", "", 1, 10), T0);
        sink.processElement(cubeRow(RowKind.INSERT, T0 + MINUTE, "BUY", 0, "", "", "", 1, 10), T0 + MINUTE);
        sink.setProcessingTime(SinkTesting.FLUSH_MS);
        cassandra.acknowledgeAll();
        cassandra.drain();

        sink.processWatermark(T0 + MINUTE - 1 + RETENTION);  // T0's bucket is past the retention, not the next
        sink.processElement(cubeRow(RowKind.INSERT, T0 + RETENTION, "VIEW", 0, "", "", "", 1, 10), T0 + RETENTION);
        List<String> deletes = new ArrayList<>();
        for (SimpleStatement s : rows(cassandra.drain())) {
            if (s.getQueryString().startsWith("DELETE")) {
                deletes.add(s.getObject(0) + "/" + s.getObject(1) + "/" + s.getObject(2));
            }
        }
        assertEquals(8, deletes.size(), "every mask, stored or not: " + deletes);
        assertTrue(deletes.contains("VIEW/0/" + T0) && deletes.contains("VIEW/7/" + T0), deletes.toString());
        sink.setProcessingTime(2 * SinkTesting.FLUSH_MS);
        cassandra.next();
        SinkTesting.close(sink, cassandra);
    }
}
