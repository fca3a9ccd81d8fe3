package allezon.sinks;

import com.datastax.driver.core.BatchStatement;
import com.datastax.driver.core.ResultSet;
import com.datastax.driver.core.Statement;
import com.datastax.driver.core.exceptions.QueryValidationException;
import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.MoreExecutors;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.sink.RichSinkFunction;
import org.apache.flink.streaming.api.operators.StreamingRuntimeContext;
import org.apache.flink.streaming.runtime.tasks.ProcessingTimeService;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * A sink that writes idempotent rows to Cassandra asynchronously, in unlogged
 * batches, and has every write acknowledged before a checkpoint completes.
 *
 * <p>Exactly-once effect: {@link #snapshotState} sends the buffer and waits
 * for every write in flight, so a completed checkpoint means every row before
 * its barrier is stored; after a crash the job replays from that checkpoint
 * and rewrites rows with the same values (upserts of absolute figures, or rows
 * identified by their Kafka position). A write that keeps failing fails the
 * task, and Flink restarts the job from its last checkpoint.
 *
 * <p>Every batch gets its write timestamp once, when first sent, from a
 * monotonic clock: a retried batch keeps it, so a retry can never overwrite a
 * newer figure of the same cube cell that was sent after it.
 *
 * <p>Batches save Cassandra and the driver a request per row; they are not
 * for atomicity. Rows wait at most {@code flushMs} in the buffer.
 */
public abstract class AsyncCassandraSink<IN> extends RichSinkFunction<IN> implements CheckpointedFunction {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(AsyncCassandraSink.class);
    /**
     * Tries of a batch before the task fails. Backoffs of 200 ms doubling to at
     * most 2 s span about 20 s: a killed replica's write timeouts last until
     * gossip marks it down (about 10 s), and a task restart would cost more.
     */
    static final int WRITE_ATTEMPTS = 12;
    static final long MAX_BACKOFF_MS = 2_000;
    private static final AtomicLong LAST_TIMESTAMP_MICROS = new AtomicLong();

    protected final SinkConfig config;
    private final CassandraTransport.Factory transports;
    protected transient CassandraTransport transport;
    private transient Semaphore inFlight;
    private transient AtomicReference<Throwable> failure;
    private transient ProcessingTimeService timers;
    private transient boolean flushScheduled;

    /**
     * A row to write, about how many bytes of values it carries, and its
     * partition when batches must hold one partition each (null: any mix).
     */
    protected static final class Pending {
        final Statement statement;
        final int bytes;
        final Object partition;

        Pending(Statement statement, int bytes, Object partition) {
            this.statement = statement;
            this.bytes = bytes;
            this.partition = partition;
        }
    }

    protected AsyncCassandraSink(SinkConfig config, CassandraTransport.Factory transports) {
        this.config = config;
        this.transports = transports;
    }

    /** Prepare statements and state; the transport is open. */
    protected abstract void prepare() throws Exception;

    /** The buffered rows, in the order to send them; the buffer is empty afterwards. */
    protected abstract Collection<Pending> drainBuffer();

    protected abstract int bufferedRows();

    @Override
    public void open(OpenContext openContext) throws Exception {
        failure = new AtomicReference<>();
        inFlight = new Semaphore(config.maxInFlight);
        timers = ((StreamingRuntimeContext) getRuntimeContext()).getProcessingTimeService();
        transport = transports.open(config);
        prepare();
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        // Nothing to restore: the buffer is empty at every completed checkpoint.
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        flushAndWait();
    }

    @Override
    public void finish() throws Exception {
        flushAndWait();
    }

    @Override
    public void close() throws Exception {
        if (transport != null) {
            transport.close();
        }
    }

    /** Call after adding rows to the buffer. */
    protected final void buffered() throws Exception {
        throwIfFailed();
        if (bufferedRows() >= config.batchRows) {
            sendBuffer();
        } else if (!flushScheduled) {
            flushScheduled = true;
            timers.registerTimer(timers.getCurrentProcessingTime() + config.flushMs, ts -> {
                flushScheduled = false;
                throwIfFailed();
                sendBuffer();
            });
        }
    }

    protected final void throwIfFailed() throws Exception {
        Throwable t = failure.get();
        if (t != null) {
            throw new Exception("Cassandra write failed after " + WRITE_ATTEMPTS + " attempts", t);
        }
    }

    /**
     * Send every buffered row, in batches of at most batchRows rows and about
     * batchBytes; rows with a partition go in batches of that partition only
     * (Cassandra applies such a batch as one mutation).
     */
    protected final void sendBuffer() throws InterruptedException {
        List<Pending> batch = new ArrayList<>();
        int bytes = 0;
        for (Pending p : drainBuffer()) {
            if (!batch.isEmpty() && (batch.size() >= config.batchRows || bytes + p.bytes > config.batchBytes
                    || (p.partition != null && !p.partition.equals(batch.get(0).partition)))) {
                send(batch);
                batch = new ArrayList<>();
                bytes = 0;
            }
            batch.add(p);
            bytes += p.bytes;
        }
        if (!batch.isEmpty()) {
            send(batch);
        }
    }

    private void send(List<Pending> rows) throws InterruptedException {
        Statement statement;
        if (rows.size() == 1) {
            statement = rows.get(0).statement;
        } else {
            BatchStatement batch = new BatchStatement(BatchStatement.Type.UNLOGGED);
            for (Pending p : rows) {
                batch.add(p.statement);
            }
            statement = batch;
        }
        execute(statement, null);
    }

    /**
     * Send one statement (timestamped now) with retries; `then` runs on its
     * result and may chain further writes with {@link #chain}. Blocks while
     * maxInFlight requests are outstanding (back-pressure).
     */
    protected final void execute(Statement statement, Consumer<ResultSet> then) throws InterruptedException {
        inFlight.acquire();
        chain(statement, then);
    }

    /** Like execute, under the permit its caller already holds (called from a `then`). */
    protected final void chain(Statement statement, Consumer<ResultSet> then) {
        statement.setDefaultTimestamp(nextTimestampMicros());
        statement.setIdempotent(true);
        attempt(statement, then, 1);
    }

    private void attempt(Statement statement, Consumer<ResultSet> then, int attempt) {
        Futures.addCallback(transport.executeAsync(statement), new FutureCallback<ResultSet>() {
            @Override
            public void onSuccess(ResultSet result) {
                if (then == null) {
                    inFlight.release();
                    return;
                }
                try {
                    then.accept(result);
                } catch (RuntimeException e) {
                    fail(e);
                }
            }

            @Override
            public void onFailure(Throwable t) {
                if (attempt >= WRITE_ATTEMPTS || t instanceof QueryValidationException) {
                    fail(t);  // a statement Cassandra refuses (e.g. a batch too large) fails the same way again
                    return;
                }
                LOG.warn("Cassandra write failed (attempt {} of {}), retrying: {}", attempt, WRITE_ATTEMPTS, t.toString());
                long backoffMs = Math.min(MAX_BACKOFF_MS, 200L << (attempt - 1));
                transport.schedule(() -> attempt(statement, then, attempt + 1), backoffMs);
            }
        }, MoreExecutors.directExecutor());
    }

    /** Ends a chain whose last step wrote nothing more. */
    protected final void done() {
        inFlight.release();
    }

    private void fail(Throwable t) {
        LOG.error("Cassandra write failed for good; the task fails and restarts from its last checkpoint", t);
        failure.compareAndSet(null, t);
        inFlight.release();
    }

    private void flushAndWait() throws Exception {
        throwIfFailed();
        sendBuffer();
        inFlight.acquire(config.maxInFlight);
        inFlight.release(config.maxInFlight);
        throwIfFailed();
    }

    private static long nextTimestampMicros() {
        long now = System.currentTimeMillis() * 1000;
        return LAST_TIMESTAMP_MICROS.updateAndGet(last -> Math.max(last + 1, now));
    }
}
