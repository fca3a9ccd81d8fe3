package allezon.sinks;

import static allezon.sinks.SinkTesting.FLUSH_MS;
import static allezon.sinks.SinkTesting.config;
import static allezon.sinks.SinkTesting.cubeHarness;
import static allezon.sinks.SinkTesting.cubeRow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

/** A failed write is sent again, with the write timestamp of its first attempt. */
class RetryTest {
    @Test
    void aRetriedStatementKeepsTheTimestampOfItsFirstAttempt() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = cubeHarness(config(), cassandra);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 0, "", "", "", 1, 10), 0);
        sink.setProcessingTime(FLUSH_MS);
        FakeTransport.Sent first = cassandra.next();

        first.future.setException(new RuntimeException("write timeout"));
        cassandra.assertNothingSent();  // not before its backoff
        assertEquals(200, cassandra.runRetry().delayMs);
        FakeTransport.Sent second = cassandra.next();
        assertSame(first.statement, second.statement);
        assertEquals(first.timestamp, second.timestamp);

        // A newer figure of the same cell, sent after, is timestamped after it.
        sink.processElement(cubeRow(RowKind.UPDATE_AFTER, 0, "VIEW", 0, "", "", "", 2, 20), 0);
        sink.setProcessingTime(2 * FLUSH_MS);
        FakeTransport.Sent newer = cassandra.next();
        assertTrue(newer.timestamp > first.timestamp);

        second.future.setException(new RuntimeException("write timeout again"));
        cassandra.runRetry();
        assertEquals(first.timestamp, cassandra.next().timestamp);
        SinkTesting.close(sink, cassandra);
    }

    @Test
    void backoffDoublesToItsCapUntilTheLastAttempt() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        OneInputStreamOperatorTestHarness<Row, Object> sink = cubeHarness(config(), cassandra);
        sink.processElement(cubeRow(RowKind.INSERT, 0, "VIEW", 0, "", "", "", 1, 10), 0);
        sink.setProcessingTime(FLUSH_MS);
        List<Long> delays = new ArrayList<>();
        for (int attempt = 1; attempt < AsyncCassandraSink.WRITE_ATTEMPTS; attempt++) {
            cassandra.next().future.setException(new RuntimeException("attempt " + attempt));
            delays.add(cassandra.runRetry().delayMs);
        }
        assertEquals(List.of(200L, 400L, 800L, 1600L), delays.subList(0, 4));
        assertTrue(delays.subList(4, delays.size()).stream().allMatch(d -> d == AsyncCassandraSink.MAX_BACKOFF_MS),
                delays.toString());
        cassandra.next().future.setException(new RuntimeException("last attempt"));
        assertTrue(cassandra.retries.isEmpty(), "retried after the last attempt");
        // Nor can the task finish: finish() flushes and fails the same way.
        assertThrows(Exception.class, sink::close);
    }
}
