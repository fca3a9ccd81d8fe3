package allezon.sinks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import com.datastax.driver.core.BatchStatement;
import com.datastax.driver.core.ResultSet;
import com.datastax.driver.core.Row;
import com.datastax.driver.core.SimpleStatement;
import com.datastax.driver.core.Statement;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.SettableFuture;

import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A transport that records every statement sent and completes its future only
 * when the test says so; retries wait in {@link #retries} until the test runs them.
 */
final class FakeTransport implements CassandraTransport, CassandraTransport.Factory {
    private static final long serialVersionUID = 1L;

    /** One executeAsync call: the statement, its write timestamp when sent, and its pending result. */
    static final class Sent {
        final Statement statement;
        final long timestamp;
        final SettableFuture<ResultSet> future = SettableFuture.create();

        Sent(Statement statement) {
            this.statement = statement;
            this.timestamp = statement.getDefaultTimestamp();
        }

        /** The rows of the statement (those of a batch, or the statement itself). */
        List<SimpleStatement> rows() {
            List<SimpleStatement> rows = new ArrayList<>();
            if (statement instanceof BatchStatement) {
                for (Statement s : ((BatchStatement) statement).getStatements()) {
                    rows.add((SimpleStatement) s);
                }
            } else {
                rows.add((SimpleStatement) statement);
            }
            return rows;
        }

        String cql() {
            return rows().get(0).getQueryString();
        }

        void succeed() {
            future.set(resultSet(List.of()));
        }
    }

    /** A retry the sink scheduled, and the backoff it asked for. */
    static final class Retry {
        final Runnable task;
        final long delayMs;

        Retry(Runnable task, long delayMs) {
            this.task = task;
            this.delayMs = delayMs;
        }
    }

    final transient BlockingQueue<Sent> sent = new LinkedBlockingQueue<>();
    /** Every statement ever sent, also those taken from {@link #sent}. */
    private final transient List<Sent> history = new CopyOnWriteArrayList<>();
    final transient ConcurrentLinkedQueue<Retry> retries = new ConcurrentLinkedQueue<>();
    volatile boolean closed;

    @Override
    public CassandraTransport open(SinkConfig config) {
        return this;
    }

    @Override
    public Prepared prepare(String cql) {
        return values -> new SimpleStatement(cql, values);
    }

    @Override
    public ListenableFuture<ResultSet> executeAsync(Statement statement) {
        Sent s = new Sent(statement);
        history.add(s);
        sent.add(s);
        return s.future;
    }

    @Override
    public void schedule(Runnable retry, long delayMs) {
        retries.add(new Retry(retry, delayMs));
    }

    @Override
    public void close() {
        closed = true;
    }

    /** The next statement sent, waiting for another thread's send if need be (bounded, a guard only). */
    Sent next() throws InterruptedException {
        Sent s = sent.poll(30, TimeUnit.SECONDS);
        assertNotNull(s, "no statement sent");
        return s;
    }

    /** Every statement sent so far (sends from the test's own thread are synchronous). */
    List<Sent> drain() {
        List<Sent> all = new ArrayList<>();
        sent.drainTo(all);
        return all;
    }

    void assertNothingSent() {
        Sent s = sent.peek();
        if (s != null) {
            fail("unexpected statement sent: " + s.cql());
        }
    }

    /** Acknowledges every write still pending (reads get no rows). */
    void acknowledgeAll() {
        for (Sent s : history) {
            if (!s.future.isDone()) {
                s.succeed();
            }
        }
    }

    /** Runs the one retry scheduled so far. */
    Retry runRetry() {
        Retry r = retries.poll();
        assertNotNull(r, "no retry scheduled");
        assertEquals(0, retries.size(), "more than one retry scheduled");
        r.task.run();
        return r;
    }

    /** A driver result whose rows hold the given values (read by index: getLong, getInt, getString). */
    static ResultSet resultSet(List<List<Object>> rows) {
        List<Row> driverRows = new ArrayList<>();
        for (List<Object> values : rows) {
            driverRows.add((Row) Proxy.newProxyInstance(Row.class.getClassLoader(), new Class<?>[] {Row.class},
                    (proxy, method, args) -> {
                        if (args != null && args.length == 1 && args[0] instanceof Integer
                                && method.getName().startsWith("get")) {
                            return values.get((Integer) args[0]);
                        }
                        throw new UnsupportedOperationException(method.toString());
                    }));
        }
        Map<String, Object> answers = new HashMap<>();
        answers.put("all", driverRows);
        return (ResultSet) Proxy.newProxyInstance(ResultSet.class.getClassLoader(), new Class<?>[] {ResultSet.class},
                (proxy, method, args) -> {
                    if (answers.containsKey(method.getName()) && (args == null || args.length == 0)) {
                        return answers.get(method.getName());
                    }
                    throw new UnsupportedOperationException(method.toString());
                });
    }
}
