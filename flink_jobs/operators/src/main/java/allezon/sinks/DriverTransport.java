package allezon.sinks;

import com.datastax.driver.core.Cluster;
import com.datastax.driver.core.ResultSet;
import com.datastax.driver.core.Session;
import com.datastax.driver.core.Statement;
import com.google.common.util.concurrent.ListenableFuture;

import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/** The production transport: a driver Session on the sinks' keyspace, and a thread for retries. */
final class DriverTransport implements CassandraTransport {
    /** Opens the production transport (see {@link CassandraSinks}). */
    static final class Opener implements Factory {
        private static final long serialVersionUID = 1L;

        @Override
        public CassandraTransport open(SinkConfig config) {
            return new DriverTransport(config);
        }
    }

    private final Cluster cluster;
    private final Session session;
    private final ScheduledExecutorService retries;

    private DriverTransport(SinkConfig config) {
        retries = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "cassandra-sink-retries");
            t.setDaemon(true);
            return t;
        });
        cluster = config.buildCluster();
        try {
            session = cluster.connect(config.keyspace);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    @Override
    public Prepared prepare(String cql) {
        return session.prepare(cql)::bind;
    }

    @Override
    public ListenableFuture<ResultSet> executeAsync(Statement statement) {
        return session.executeAsync(statement);
    }

    @Override
    public void schedule(Runnable retry, long delayMs) {
        retries.schedule(retry, delayMs, TimeUnit.MILLISECONDS);
    }

    @Override
    public void close() {
        retries.shutdownNow();
        cluster.close();
    }
}
