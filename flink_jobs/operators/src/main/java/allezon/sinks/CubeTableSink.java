package allezon.sinks;

import allezon.cube.Cells;
import allezon.cube.CubeConfig;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;

/**
 * A sink of rows of the cube's table (cql/020_aggregates.cql): it also
 * deletes the buckets it wrote once the watermark is past the retention, one
 * partition per (action, dims, bucket).
 */
abstract class CubeTableSink<IN> extends AsyncCassandraSink<IN> {
    private static final long serialVersionUID = 1L;
    static final String TABLE = "aggregate_cells";

    private transient Retention retention;
    private transient CassandraTransport.Prepared deleteBucket;
    private transient long sweptAt;

    protected CubeTableSink(SinkConfig config, CassandraTransport.Factory transports) {
        super(config, transports);
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        super.initializeState(context);
        retention = new Retention(config.cube);
        retention.initializeState(context);
        sweptAt = Long.MIN_VALUE;
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        super.snapshotState(context);
        retention.snapshotState();
    }

    /** Call from prepare(). */
    protected final void prepareRetention() {
        deleteBucket = transport.prepare("DELETE FROM " + TABLE + " WHERE action = ? AND dims = ? AND bucket_ms = ?");
    }

    protected final void written(long bucketMs, String action) {
        retention.note(bucketMs, action);
    }

    /** Delete the buckets the watermark has pushed past the retention (checked once per bucket length). */
    protected final void sweep(long watermark) throws Exception {
        if (watermark < sweptAt + CubeConfig.BUCKET_MS) {
            return;
        }
        sweptAt = watermark;
        for (Tuple2<Long, String> expired : retention.expired(watermark)) {
            // Every mask, stored or not: a cube written with other stored masks is expired too.
            for (byte dims = 0; dims < Cells.MASKS; dims++) {
                execute(deleteBucket.bind(expired.f1, dims, expired.f0), null);
            }
        }
    }

    int trackedBuckets() {
        return retention.tracked();
    }
}
