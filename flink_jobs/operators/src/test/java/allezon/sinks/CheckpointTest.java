package allezon.sinks;

import static allezon.sinks.SinkTesting.config;
import static allezon.sinks.SinkTesting.cubeHarness;
import static allezon.sinks.SinkTesting.cubeRow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.junit.jupiter.api.Test;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/** A checkpoint completes only once every write before its barrier is acknowledged. */
class CheckpointTest {
    private static OneInputStreamOperatorTestHarness<Row, Object> twoPartitionsBuffered(FakeTransport cassandra)
            throws Exception {
        OneInputStreamOperatorTestHarness<Row, Object> sink = cubeHarness(config(), cassandra);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 0, "", "", "", 1, 10), 0);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "BUY", 0, "", "", "", 1, 10), 0);
        cassandra.assertNothingSent();
        return sink;
    }

    private static boolean causedBy(Throwable t, String message) {
        for (; t != null; t = t.getCause()) {
            if (message.equals(t.getMessage())) {
                return true;
            }
        }
        return false;
    }

    @Test
    void snapshotSendsTheBufferAndReturnsOnlyOnceEveryWriteIsAcknowledged() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = twoPartitionsBuffered(cassandra);
        SinkTesting.Blocking snapshot = new SinkTesting.Blocking(() -> sink.snapshot(1, 1));
        FakeTransport.Sent view = cassandra.next();
        FakeTransport.Sent buy = cassandra.next();
        assertTrue(snapshot.stillWaiting(), "snapshot returned with two writes in flight");

        view.succeed();
        assertTrue(snapshot.stillWaiting(), "snapshot returned with a write in flight");
        assertFalse(snapshot.result.isDone());

        buy.succeed();
        snapshot.result.get(30, TimeUnit.SECONDS);
        SinkTesting.close(sink, cassandra);
    }

    @Test
    void aWriteThatFailsEveryAttemptFailsTheSnapshot() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = twoPartitionsBuffered(cassandra);
        SinkTesting.Blocking snapshot = new SinkTesting.Blocking(() -> sink.snapshot(1, 1));
        FakeTransport.Sent view = cassandra.next();
        cassandra.next().succeed();
        view.future.setException(new RuntimeException("attempt 1"));
        for (int attempt = 2; attempt <= AsyncCassandraSink.WRITE_ATTEMPTS; attempt++) {
            assertTrue(snapshot.stillWaiting(), "snapshot returned while the write was being retried");
            cassandra.runRetry();
            cassandra.next().future.setException(new RuntimeException("attempt " + attempt));
        }
        ExecutionException failed = assertThrows(ExecutionException.class, () -> snapshot.result.get(30, TimeUnit.SECONDS));
        assertTrue(causedBy(failed, "attempt " + AsyncCassandraSink.WRITE_ATTEMPTS), failed.toString());
        // Nor can the task finish: finish() flushes and fails the same way.
        assertThrows(Exception.class, sink::close);
    }

    @Test
    void aWriteThatFailedBeforeTheSnapshotFailsIt() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = cubeHarness(config(), cassandra);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 0, "", "", "", 1, 10), 0);
        sink.setProcessingTime(SinkTesting.FLUSH_MS);
        cassandra.next().future.setException(new RuntimeException("attempt 1"));
        for (int attempt = 2; attempt <= AsyncCassandraSink.WRITE_ATTEMPTS; attempt++) {
            cassandra.runRetry();
            cassandra.next().future.setException(new RuntimeException("attempt " + attempt));
        }
        Exception failed = assertThrows(Exception.class, () -> sink.snapshot(1, 1));
        assertTrue(causedBy(failed, "attempt " + AsyncCassandraSink.WRITE_ATTEMPTS), failed.toString());
        assertEquals(0, cassandra.drain().size());
        // Nor can the task finish: finish() flushes and fails the same way.
        assertThrows(Exception.class, sink::close);
    }
}
