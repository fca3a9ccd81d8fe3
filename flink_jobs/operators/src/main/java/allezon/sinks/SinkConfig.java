package allezon.sinks;

import allezon.cube.CubeConfig;

import com.datastax.driver.core.Cluster;
import com.datastax.driver.core.ConsistencyLevel;
import com.datastax.driver.core.ProtocolVersion;
import com.datastax.driver.core.QueryOptions;
import com.datastax.driver.core.SocketOptions;
import com.datastax.driver.core.policies.DCAwareRoundRobinPolicy;
import com.datastax.driver.core.policies.TokenAwarePolicy;

import java.io.Serializable;
import java.util.Map;

/**
 * The sinks' settings, taken from the job's environment (flink_jobs/config.py
 * JobSettings) by the Python driver and shipped with the job graph.
 */
public final class SinkConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    final String contactPoints;
    final int port;
    final String localDc;
    final String keyspace;
    final String consistency;
    final int requestTimeoutMs;
    /** Batches (or trims) sent and not yet acknowledged, per sink subtask. */
    final int maxInFlight;
    final int batchRows;
    final int batchBytes;
    /** A row waits at most this long in the buffer before it is sent. */
    final long flushMs;
    final int profileCap;
    final int profileTrimSlack;
    /** Lateness and retention: which buckets the sinks delete. */
    final CubeConfig cube;

    private SinkConfig(Map<String, String> m) {
        contactPoints = required(m, "contact_points");
        port = Integer.parseInt(required(m, "port"));
        localDc = required(m, "local_dc");
        keyspace = required(m, "keyspace");
        consistency = required(m, "consistency");
        requestTimeoutMs = Integer.parseInt(required(m, "request_timeout_ms"));
        maxInFlight = Integer.parseInt(required(m, "max_in_flight"));
        batchRows = Integer.parseInt(required(m, "batch_rows"));
        batchBytes = Integer.parseInt(required(m, "batch_bytes"));
        flushMs = Long.parseLong(required(m, "flush_ms"));
        profileCap = Integer.parseInt(required(m, "profile_cap"));
        profileTrimSlack = Integer.parseInt(required(m, "profile_trim_slack"));
        cube = CubeConfig.from(m);
    }

    public static SinkConfig from(Map<String, String> settings) {
        return new SinkConfig(settings);
    }

    private static String required(Map<String, String> m, String key) {
        String value = m.get(key);
        if (value == null) {
            throw new IllegalArgumentException("sink setting missing: " + key);
        }
        return value;
    }

    /** Token-aware in the local DC, the configured consistency, idempotent writes retried by the sinks. */
    Cluster buildCluster() {
        return Cluster.builder()
                .addContactPoints(contactPoints.split(","))
                .withPort(port)
                .withProtocolVersion(ProtocolVersion.V4)
                .withLoadBalancingPolicy(new TokenAwarePolicy(
                        DCAwareRoundRobinPolicy.builder().withLocalDc(localDc).build()))
                .withQueryOptions(new QueryOptions()
                        .setConsistencyLevel(ConsistencyLevel.valueOf(consistency.toUpperCase()))
                        .setDefaultIdempotence(true))
                .withSocketOptions(new SocketOptions()
                        .setConnectTimeoutMillis(2000)
                        .setReadTimeoutMillis(requestTimeoutMs))
                // The driver's metrics need a JMX reporter API that metrics-core 4 moved;
                // the job reports its own throughput through Flink's metrics.
                .withoutMetrics()
                .withoutJMXReporting()
                .build();
    }
}
