package allezon.sinks;

import allezon.Columns;
import allezon.cube.CubeTesting;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.operators.StreamSink;
import org.apache.flink.streaming.util.AbstractStreamOperatorTestHarness;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/** Rows, settings and operator harnesses for the sinks' tests. */
final class SinkTesting {
    private SinkTesting() {
    }

    static final long FLUSH_MS = 200;

    /** Test settings; `overrides` are key, value, key, value, ... */
    static SinkConfig config(String... overrides) {
        Map<String, String> m = new HashMap<>();
        m.put("contact_points", "127.0.0.1");
        m.put("port", "9042");
        m.put("local_dc", "datacenter1");
        m.put("keyspace", "test");
        m.put("consistency", "LOCAL_ONE");
        m.put("request_timeout_ms", "1000");
        m.put("max_in_flight", "16");
        m.put("batch_rows", "100");
        m.put("batch_bytes", String.valueOf(48 * 1024));
        m.put("flush_ms", String.valueOf(FLUSH_MS));
        m.put("profile_cap", "4");
        m.put("profile_trim_slack", "2");
        m.put("allowed_lateness_ms", String.valueOf(CubeTesting.LATENESS));
        m.put("retention_ms", String.valueOf(CubeTesting.RETENTION));
        m.put("emit_interval_ms", String.valueOf(CubeTesting.EMIT_MS));
        StringBuilder masks = new StringBuilder();
        for (byte dims : CubeTesting.STORED_MASKS) {
            masks.append(masks.length() == 0 ? "" : ",").append(dims);
        }
        m.put("stored_masks", masks.toString());
        for (int i = 0; i < overrides.length; i += 2) {
            m.put(overrides[i], overrides[i + 1]);
        }
        return SinkConfig.from(m);
    }

    static OneInputStreamOperatorTestHarness<Row, Object> cubeHarness(SinkConfig config, FakeTransport transport)
            throws Exception {
        OneInputStreamOperatorTestHarness<Row, Object> h =
                new OneInputStreamOperatorTestHarness<>(new StreamSink<>(new CubeSink(config, transport)));
        h.open();
        return h;
    }

    static OneInputStreamOperatorTestHarness<Row, Object> correctionHarness(
            SinkConfig config, FakeTransport transport, org.apache.flink.runtime.checkpoint.OperatorSubtaskState restore)
            throws Exception {
        OneInputStreamOperatorTestHarness<Row, Object> h =
                new OneInputStreamOperatorTestHarness<>(new StreamSink<>(new CorrectionSink(config, transport)));
        if (restore != null) {
            h.initializeState(restore);
        }
        h.open();
        return h;
    }

    static KeyedOneInputStreamOperatorTestHarness<String, Row, Object> profileHarness(
            SinkConfig config, FakeTransport transport) throws Exception {
        KeyedOneInputStreamOperatorTestHarness<String, Row, Object> h = new KeyedOneInputStreamOperatorTestHarness<>(
                new StreamSink<>(new ProfileSink(config, transport)), new CassandraSinks.ActionAndCookie(), Types.STRING);
        h.open();
        return h;
    }

    /**
     * Closes the sink as Flink ends a task: it flushes and waits for every
     * write (finish), so the writes still pending are acknowledged first.
     */
    static void close(AbstractStreamOperatorTestHarness<?> sink, FakeTransport cassandra) throws Exception {
        cassandra.acknowledgeAll();
        sink.close();
        assertTrue(cassandra.closed, "the sink did not close its transport");
    }

    /** A cube changelog row, its fields set by name as the SQL side's rows carry them. */
    static Row cubeRow(RowKind kind, long bucketMs, String action, int dims, String origin, String brandId,
                       String categoryId, long count, long sumPrice) {
        Row row = Row.withNames(kind);
        row.setField(Columns.BUCKET_MS, bucketMs);
        row.setField(Columns.ACTION, action);
        row.setField(Columns.DIMS, (byte) dims);
        row.setField(Columns.ORIGIN, origin);
        row.setField(Columns.BRAND_ID, brandId);
        row.setField(Columns.CATEGORY_ID, categoryId);
        row.setField(Columns.COUNT, count);
        row.setField(Columns.SUM_PRICE, sumPrice);
        return row;
    }

    static Row profileRow(String cookie, String action, long timeMs, int partition, long offset) {
        Row row = Row.withNames();
        row.setField(Columns.COOKIE, cookie);
        row.setField(Columns.ACTION, action);
        row.setField(Columns.TIME_MS, timeMs);
        row.setField(Columns.KAFKA_PARTITION, partition);
        row.setField(Columns.KAFKA_OFFSET, offset);
        row.setField(Columns.TAG, "{\"n\":" + offset + "}");
        return row;
    }

    /** Runs `body` on a thread of its own (a call that blocks until the test completes writes). */
    static final class Blocking {
        final CompletableFuture<Void> result = new CompletableFuture<>();
        final Thread thread;

        interface Body {
            void run() throws Exception;
        }

        Blocking(Body body) {
            thread = new Thread(() -> {
                try {
                    body.run();
                    result.complete(null);
                } catch (Throwable t) {
                    result.completeExceptionally(t);
                }
            }, "test-blocking-call");
            thread.setDaemon(true);
            thread.start();
        }

        /**
         * Waits until the call has either returned or parked (it waits for
         * something only the test can do); true when it is still waiting.
         */
        boolean stillWaiting() {
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (true) {
                Thread.State state = thread.getState();
                if (state == Thread.State.TERMINATED) {
                    return false;
                }
                if (state == Thread.State.WAITING) {
                    return true;
                }
                if (System.nanoTime() > deadline) {
                    fail("call neither returned nor waited: " + state);
                }
                Thread.onSpinWait();
            }
        }
    }
}
