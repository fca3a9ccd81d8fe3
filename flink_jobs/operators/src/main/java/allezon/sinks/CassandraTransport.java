package allezon.sinks;

import com.datastax.driver.core.ResultSet;
import com.datastax.driver.core.Statement;
import com.google.common.util.concurrent.ListenableFuture;

import java.io.Serializable;

/**
 * Where the sinks send their statements: the driver's Session in production
 * ({@link DriverTransport}); tests give a fake that records statements and
 * completes their futures when the test says so.
 */
public interface CassandraTransport extends AutoCloseable {

    /** A prepared statement: binds values to a statement ready to execute. */
    interface Prepared {
        Statement bind(Object... values);
    }

    /** Opens a transport on a task manager (shipped with the job graph, hence Serializable). */
    interface Factory extends Serializable {
        CassandraTransport open(SinkConfig config) throws Exception;
    }

    Prepared prepare(String cql);

    ListenableFuture<ResultSet> executeAsync(Statement statement);

    /** Runs a retry after its backoff, on a thread of the transport's own. */
    void schedule(Runnable retry, long delayMs);

    @Override
    void close();
}
