package allezon.cube;

import allezon.Columns;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.ChainingStrategy;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;

/**
 * Sends each tag row to the cube's windows, to the late path, or nowhere,
 * by its bucket against the released frontier: the highest watermark this
 * subtask has passed on, kept in its checkpoints.
 *
 * <ul>
 *   <li>bucket window not yet released: main output (the windows);</li>
 *   <li>released, but within the retention: {@link #veryLate} (a correction row per cell);</li>
 *   <li>past the retention: dropped and counted; logged with its Kafka position
 *       at most once per {@link #DROP_LOG_INTERVAL_NANOS} ({@link LogThrottle}).</li>
 * </ul>
 *
 * <p>Why a checkpointed frontier and not the window's own lateness test: after a
 * restore a window operator's watermark starts from nothing, so a tag for a
 * released bucket would open a new window holding only itself, and its figure
 * would overwrite the bucket's complete total. Here a released bucket stays
 * released. The windows see only watermarks this operator passed on, so the
 * frontier is never behind theirs and no tag that passes is late for them.
 */
public final class LateTagRouter extends AbstractStreamOperator<Row> implements OneInputStreamOperator<Row, Row> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(LateTagRouter.class);
    static final long DROP_LOG_INTERVAL_NANOS = 10_000_000_000L;

    private final CubeConfig config;
    /** Tags for released buckets within the retention (typed like the input: Kryo cannot copy rows). */
    final OutputTag<Row> veryLate;
    private transient long frontier;
    private transient ListState<Long> frontierState;
    private transient Counter veryLateCount;
    private transient Counter dropped;
    private transient LogThrottle dropLog;

    public LateTagRouter(CubeConfig config, TypeInformation<Row> tagType) {
        this.config = config;
        this.veryLate = new OutputTag<>("very-late-tags", tagType);
        setChainingStrategy(ChainingStrategy.ALWAYS);  // with the source: no copy of each tag
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        // Union state: after a rescale every subtask takes the highest frontier any had.
        frontierState = context.getOperatorStateStore()
                .getUnionListState(new ListStateDescriptor<>("released-frontier", Types.LONG));
        frontier = Long.MIN_VALUE;
        for (Long f : frontierState.get()) {
            frontier = Math.max(frontier, f);
        }
    }

    @Override
    public void open() throws Exception {
        super.open();
        veryLateCount = getMetricGroup().counter("tagsVeryLate");
        dropped = getMetricGroup().counter("tagsDroppedPastRetention");
        dropLog = new LogThrottle(DROP_LOG_INTERVAL_NANOS);
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        frontierState.update(List.of(frontier));
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        frontier = Math.max(frontier, mark.getTimestamp());
        super.processWatermark(mark);
    }

    @Override
    public void processElement(StreamRecord<Row> record) {
        long bucket = CubeConfig.bucketOf(record.getTimestamp());
        if (!config.released(bucket, frontier)) {
            output.collect(record);
        } else if (!config.expired(bucket, frontier)) {
            veryLateCount.inc();
            output.collect(veryLate, record);
        } else {
            dropped.inc();
            logDrop(record);
        }
    }

    private void logDrop(StreamRecord<Row> record) {
        if (!dropLog.admit(System.nanoTime())) {
            return;
        }
        Row tag = record.getValue();
        LOG.warn("tag dropped: its bucket is past the retention ({} ms behind watermark {}): "
                        + "partition={} offset={} cookie={} time_ms={}; {} more dropped since the previous such "
                        + "line (total: metric tagsDroppedPastRetention)",
                config.retentionMs, frontier, tag.getField(Columns.KAFKA_PARTITION),
                tag.getField(Columns.KAFKA_OFFSET), tag.getField(Columns.COOKIE), record.getTimestamp(),
                dropLog.skipped());
    }
}
