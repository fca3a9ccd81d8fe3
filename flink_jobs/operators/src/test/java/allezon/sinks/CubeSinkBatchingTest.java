package allezon.sinks;

import static allezon.sinks.SinkTesting.FLUSH_MS;
import static allezon.sinks.SinkTesting.config;
import static allezon.sinks.SinkTesting.cubeHarness;
import static allezon.sinks.SinkTesting.cubeRow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.driver.core.SimpleStatement;

import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/** How the cube sink groups its rows into batches. */
class CubeSinkBatchingTest {
    /** The statement's values in the upsert's order: action, dims, bucket_ms, origin, brand_id, category_id, count, sum_price. */
    private static List<Object> values(SimpleStatement s) {
        Object[] v = new Object[s.valuesCount()];
        for (int i = 0; i < v.length; i++) {
            v[i] = s.getObject(i);
        }
        return Arrays.asList(v);
    }

    private static List<Object> partition(SimpleStatement s) {
        return values(s).subList(0, 3);
    }

    private static List<Integer> batchSizes(List<FakeTransport.Sent> sent) {
        return sent.stream().map(s -> s.rows().size()).collect(Collectors.toList());
    }

    @Test
    void aBatchHoldsOnePartition() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = cubeHarness(config(), cassandra);
        // Interleaved partitions: (VIEW, 0, 0), (BUY, 0, 0), (VIEW, 7, 0), (VIEW, 0, 60000).
        sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 0, "", "", "", 1, 10), 0);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "BUY", 0, "", "", "", 1, 10), 0);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 7, "o", "b", "c", 1, 10), 0);
        sink.processElement(cubeRow(RowKind.INSERT, 60_000, "VIEW", 0, "", "", "", 1, 10), 0);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 7, "o", "b", "c2", 1, 10), 0);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "BUY", 7, "o", "b", "c", 1, 10), 0);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "BUY", 0, "", "", "", 2, 20), 0);
        cassandra.assertNothingSent();

        sink.setProcessingTime(FLUSH_MS);
        List<FakeTransport.Sent> sent = cassandra.drain();
        Set<List<Object>> partitions = new HashSet<>();
        int rows = 0;
        for (FakeTransport.Sent s : sent) {
            Set<List<Object>> inBatch = s.rows().stream().map(CubeSinkBatchingTest::partition).collect(Collectors.toSet());
            assertEquals(1, inBatch.size(), "a batch mixes partitions: " + inBatch);
            assertTrue(partitions.add(inBatch.iterator().next()), "a partition split over two batches");
            rows += s.rows().size();
        }
        assertEquals(5, partitions.size());
        // Six cells; (BUY, 0, 0)'s second figure replaced its first.
        assertEquals(6, rows);
        SinkTesting.close(sink, cassandra);
    }

    @Test
    void aCellUpdatedTwiceWithinAFlushIsWrittenOnceWithItsNewestFigure() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = cubeHarness(config(), cassandra);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 0, "", "", "", 1, 10), 0);
        sink.processElement(cubeRow(RowKind.UPDATE_BEFORE, 0, "VIEW", 0, "", "", "", 1, 10), 0);
        sink.processElement(cubeRow(RowKind.UPDATE_AFTER, 0, "VIEW", 0, "", "", "", 2, 30), 0);
        sink.setProcessingTime(FLUSH_MS);
        List<FakeTransport.Sent> sent = cassandra.drain();
        assertEquals(1, sent.size());
        assertEquals(List.of("VIEW", (byte) 0, 0L, "", "", "", 2L, 30L), values(sent.get(0).rows().get(0)));
        SinkTesting.close(sink, cassandra);
    }

    @Test
    void batchRowsRowsAreSentAtOnceAndNoBatchHoldsMore() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = cubeHarness(config("batch_rows", "3"), cassandra);
        for (int cell = 0; cell < 7; cell++) {
            sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 7, "o" + cell, "b", "c", 1, 10), 0);
        }
        // Two full batches went out without waiting for the flush timer.
        assertEquals(List.of(3, 3), batchSizes(cassandra.drain()));
        sink.setProcessingTime(FLUSH_MS);
        assertEquals(List.of(1), batchSizes(cassandra.drain()));
        SinkTesting.close(sink, cassandra);
    }

    @Test
    void aBatchStaysWithinBatchBytes() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        // A row here counts 48 + 4 ("VIEW") + 3 one-letter strings = 55 bytes: two fit in 120, three do not.
        OneInputStreamOperatorTestHarness<Row, Object> sink = cubeHarness(config("batch_bytes", "120"), cassandra);
        for (int cell = 0; cell < 5; cell++) {
            sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 7, String.valueOf(cell), "b", "c", 1, 10), 0);
        }
        sink.setProcessingTime(FLUSH_MS);
        assertEquals(List.of(2, 2, 1), batchSizes(cassandra.drain()));
        SinkTesting.close(sink, cassandra);
    }

    @Test
    void rowsWaitAtMostFlushMs() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = cubeHarness(config(), cassandra);
        sink.setProcessingTime(1_000);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 0, "", "", "", 1, 10), 0);
        sink.setProcessingTime(1_000 + FLUSH_MS - 1);
        cassandra.assertNothingSent();
        sink.setProcessingTime(1_000 + FLUSH_MS);
        assertEquals(List.of(1), batchSizes(cassandra.drain()));
        SinkTesting.close(sink, cassandra);
    }
}
