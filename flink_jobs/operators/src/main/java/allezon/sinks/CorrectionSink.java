package allezon.sinks;

import allezon.Columns;
import allezon.cube.Cells;
import allezon.cube.CubeConfig;

import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeHint;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.tuple.Tuple8;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.types.Row;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The late path's writer: for each very late tag (allezon.cube.LateTagRouter),
 * one correction row per cell of its bucket, keyed by the tag's Kafka position
 * (late_partition, late_offset) and holding (1, price). The query API adds a
 * cell's corrections to its window row. A replay rewrites the same rows.
 *
 * <p>Written only once the checkpoint after the tag completed. Whether a tag
 * is very late depends on the watermark when it arrives, which a replay after
 * a crash does not reproduce: a tag past an unfinished checkpoint may then go
 * to its window instead. So corrections wait for their checkpoint (kept in
 * its state), and a replay decides anew for every tag after it; a window
 * figure written before the crash is overwritten by the window's final one.
 */
public final class CorrectionSink extends CubeTableSink<Row> implements CheckpointListener {
    private static final long serialVersionUID = 1L;
    private static final int FIXED_BYTES = 64;

    /** (action, origin, brand_id, category_id, price, time_ms, kafka_partition, kafka_offset). */
    public static final class LateTag extends Tuple8<String, String, String, String, Long, Long, Integer, Long> {
        private static final long serialVersionUID = 1L;

        public LateTag() {
        }

        LateTag(Row t) {
            super((String) t.getField(Columns.ACTION), (String) t.getField(Columns.ORIGIN),
                    (String) t.getField(Columns.BRAND_ID), (String) t.getField(Columns.CATEGORY_ID),
                    ((Number) t.getField(Columns.PRICE)).longValue(), (Long) t.getField(Columns.TIME_MS),
                    (Integer) t.getField(Columns.KAFKA_PARTITION), (Long) t.getField(Columns.KAFKA_OFFSET));
        }
    }

    private transient CassandraTransport.Prepared correction;
    /** Tags since the last checkpoint. */
    private transient List<LateTag> sinceCheckpoint;
    /** Tags per checkpoint that has not completed yet. */
    private transient TreeMap<Long, List<LateTag>> staged;
    /** Rows of completed checkpoints, to send. */
    private transient List<Pending> ready;
    private transient ListState<LateTag> stagedState;
    private transient long watermark;

    public CorrectionSink(SinkConfig config, CassandraTransport.Factory transports) {
        super(config, transports);
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        super.initializeState(context);
        sinceCheckpoint = new ArrayList<>();
        staged = new TreeMap<>();
        ready = new ArrayList<>();
        watermark = Long.MIN_VALUE;
        stagedState = context.getOperatorStateStore().getListState(new ListStateDescriptor<>(
                "staged-corrections", TypeInformation.of(new TypeHint<LateTag>() { })));
        // Restored from a completed checkpoint: everything staged in it is final.
        List<LateTag> restored = new ArrayList<>();
        stagedState.get().forEach(restored::add);
        if (!restored.isEmpty()) {
            staged.put(Long.MIN_VALUE, restored);
        }
    }

    @Override
    protected void prepare() throws Exception {
        prepareRetention();
        correction = transport.prepare("INSERT INTO " + TABLE + " (action, dims, bucket_ms, origin, brand_id, "
                + "category_id, late_partition, late_offset, count, sum_price) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)");
        commitUpTo(Long.MIN_VALUE);
    }

    @Override
    public void invoke(Row tag, Context context) throws Exception {
        throwIfFailed();
        LateTag late = new LateTag(tag);
        sinceCheckpoint.add(late);
        written(CubeConfig.bucketOf(late.f5), late.f0);
        watermark = Math.max(watermark, context.currentWatermark());
        sweep(watermark);
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        if (!sinceCheckpoint.isEmpty()) {
            staged.put(context.getCheckpointId(), sinceCheckpoint);
            sinceCheckpoint = new ArrayList<>();
        }
        super.snapshotState(context);
        List<LateTag> all = new ArrayList<>();
        staged.values().forEach(all::addAll);
        stagedState.update(all);
    }

    @Override
    public void notifyCheckpointComplete(long checkpointId) throws Exception {
        commitUpTo(checkpointId);
    }

    private void commitUpTo(long checkpointId) throws Exception {
        // Grouped by partition: a batch holds one partition (Cassandra applies it as one
        // mutation; a batch over many partitions can pass batch_size_fail_threshold).
        Map<List<Object>, List<Pending>> byPartition = new HashMap<>();
        Map<Long, List<LateTag>> done = staged.headMap(checkpointId, true);
        for (List<LateTag> tags : done.values()) {
            for (LateTag t : tags) {
                long bucket = CubeConfig.bucketOf(t.f5);
                if (config.cube.expired(bucket, watermark)) {
                    continue;  // its bucket is deleted (or about to be): a correction would outlive it
                }
                for (byte dims : config.cube.storedMasks) {
                    String origin = Cells.part(dims, Cells.ORIGIN, t.f1);
                    String brandId = Cells.part(dims, Cells.BRAND, t.f2);
                    String categoryId = Cells.part(dims, Cells.CATEGORY, t.f3);
                    List<Object> partition = Arrays.asList(t.f0, dims, bucket);
                    byPartition.computeIfAbsent(partition, k -> new ArrayList<>()).add(new Pending(
                            correction.bind(t.f0, dims, bucket, origin, brandId, categoryId, t.f6, t.f7, t.f4),
                            FIXED_BYTES + t.f0.length() + origin.length() + brandId.length() + categoryId.length(),
                            partition));
                }
            }
        }
        done.clear();
        byPartition.values().forEach(ready::addAll);
        if (!ready.isEmpty()) {
            sendBuffer();
        }
    }

    @Override
    protected Collection<Pending> drainBuffer() {
        List<Pending> rows = ready;
        ready = new ArrayList<>();
        return rows;
    }

    @Override
    protected int bufferedRows() {
        return ready.size();
    }
}
