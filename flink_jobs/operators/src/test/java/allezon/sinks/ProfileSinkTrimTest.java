package allezon.sinks;

import static allezon.sinks.SinkTesting.config;
import static allezon.sinks.SinkTesting.profileHarness;
import static allezon.sinks.SinkTesting.profileRow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.driver.core.SimpleStatement;

import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

/**
 * The profile trim: after cap + slack rows of a (cookie, action) since its
 * last trim, the sink reads the newest cap rows and deletes the older ones.
 * Here cap = 4 and slack = 2.
 */
class ProfileSinkTrimTest {
    private static final int CAP = 4;
    private static final int SLACK = 2;

    /** Row n of a profile: time n * 1000, partition 0, offset n. */
    private static void write(KeyedOneInputStreamOperatorTestHarness<String, Row, Object> sink, String cookie, int n)
            throws Exception {
        sink.processElement(profileRow(cookie, "VIEW", n * 1000L, 0, n), 0);
    }

    /** The stored rows the SELECT answers with: the newest `count` up to row `upTo`, newest first. */
    private static List<List<Object>> newest(int upTo, int count) {
        List<List<Object>> rows = new ArrayList<>();
        for (int n = upTo; n > upTo - count; n--) {
            rows.add(List.of(n * 1000L, 0, (long) n));
        }
        return rows;
    }

    private static List<Object> values(SimpleStatement s) {
        List<Object> v = new ArrayList<>();
        for (int i = 0; i < s.valuesCount(); i++) {
            v.add(s.getObject(i));
        }
        return v;
    }

    /** Writes rows from..to of `cookie` and returns what was sent; asserts no trim began. */
    private static List<FakeTransport.Sent> writeWithoutTrim(
            KeyedOneInputStreamOperatorTestHarness<String, Row, Object> sink, FakeTransport cassandra,
            String cookie, int from, int to) throws Exception {
        for (int n = from; n <= to; n++) {
            write(sink, cookie, n);
        }
        List<FakeTransport.Sent> sent = cassandra.drain();
        for (FakeTransport.Sent s : sent) {
            assertTrue(s.cql().startsWith("INSERT"), "trim before cap + slack rows: " + s.cql());
        }
        return sent;
    }

    /**
     * Asserts a trim of `cookie` began: the buffered inserts went out, then the
     * read of the newest cap rows; acknowledges the inserts, returns both.
     */
    private static List<FakeTransport.Sent> trimBegan(FakeTransport cassandra, String cookie, int inserts) {
        List<FakeTransport.Sent> sent = cassandra.drain();
        assertEquals(2, sent.size(), "expected the buffered inserts and the read of the newest rows");
        assertEquals(inserts, sent.get(0).rows().size());
        assertTrue(sent.get(0).cql().startsWith("INSERT"));
        FakeTransport.Sent read = sent.get(1);
        assertTrue(read.cql().startsWith("SELECT"), read.cql());
        assertEquals(List.of(cookie, "VIEW", CAP), values(read.rows().get(0)));
        sent.get(0).succeed();
        return sent;
    }

    @Test
    void trimsAfterCapPlusSlackRowsAndAgainAfterSlackMore() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        KeyedOneInputStreamOperatorTestHarness<String, Row, Object> sink = profileHarness(config(), cassandra);

        assertEquals(List.of(), writeWithoutTrim(sink, cassandra, "c", 1, CAP + SLACK - 1));
        write(sink, "c", CAP + SLACK);
        List<FakeTransport.Sent> trim = trimBegan(cassandra, "c", CAP + SLACK);
        FakeTransport.Sent inserts = trim.get(0);
        FakeTransport.Sent read = trim.get(1);

        read.future.set(FakeTransport.resultSet(newest(CAP + SLACK, CAP)));
        FakeTransport.Sent delete = cassandra.next();
        assertTrue(delete.cql().startsWith("DELETE"), delete.cql());
        // Everything older than the oldest of the newest cap rows (row 3) goes.
        assertEquals(List.of("c", "VIEW", 3000L, 0, 3L), values(delete.rows().get(0)));
        assertTrue(delete.timestamp > inserts.timestamp, "the delete must be timestamped after the inserts it covers");
        delete.succeed();

        // The counter restarts at cap: the next trim comes after slack more rows.
        writeWithoutTrim(sink, cassandra, "c", CAP + SLACK + 1, CAP + 2 * SLACK - 1);
        write(sink, "c", CAP + 2 * SLACK);
        trimBegan(cassandra, "c", SLACK).get(1).succeed();
        sink.snapshot(1, 1);
        SinkTesting.close(sink, cassandra);
    }

    @Test
    void fewerThanCapRowsStoredMeansNoDelete() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        KeyedOneInputStreamOperatorTestHarness<String, Row, Object> sink = profileHarness(config(), cassandra);
        writeWithoutTrim(sink, cassandra, "c", 1, CAP + SLACK - 1);
        write(sink, "c", CAP + SLACK);
        // Rows still in flight may be missing from the read.
        trimBegan(cassandra, "c", CAP + SLACK).get(1).future.set(FakeTransport.resultSet(newest(CAP + SLACK, CAP - 1)));
        cassandra.assertNothingSent();
        // The trim's permit is back: the snapshot does not wait for anything.
        sink.snapshot(1, 1);
        cassandra.assertNothingSent();
        SinkTesting.close(sink, cassandra);
    }

    @Test
    void eachCookieAndActionCountsItsOwnRows() throws Exception {
        FakeTransport cassandra = new FakeTransport();
        KeyedOneInputStreamOperatorTestHarness<String, Row, Object> sink = profileHarness(config(), cassandra);
        writeWithoutTrim(sink, cassandra, "a", 1, CAP + SLACK - 1);
        writeWithoutTrim(sink, cassandra, "b", 1, CAP + SLACK - 1);
        // Same cookie, another action: a profile of its own.
        for (int n = 1; n < CAP + SLACK; n++) {
            sink.processElement(profileRow("a", "BUY", n * 1000L, 0, 100 + n), 0);
        }
        cassandra.assertNothingSent();
        write(sink, "b", CAP + SLACK);
        trimBegan(cassandra, "b", 3 * (CAP + SLACK - 1) + 1).get(1).future.set(FakeTransport.resultSet(List.of()));
        sink.snapshot(1, 1);
        SinkTesting.close(sink, cassandra);
    }
}
