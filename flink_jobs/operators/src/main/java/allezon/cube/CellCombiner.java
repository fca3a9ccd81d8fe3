package allezon.cube;

import allezon.Columns;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.ChainingStrategy;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

import java.util.HashMap;
import java.util.Map;

/**
 * Turns each tag row into its cells (one per stored mask, CubeConfig) and adds them up locally
 * before the shuffle to the windows: a hot cell (say, all VIEWs of the
 * minute) then costs the windows one record per flush, not one per tag.
 *
 * <p>Nothing stays buffered across a watermark or a checkpoint barrier: the
 * buffer is sent before either goes on, so a window never sees a watermark
 * ahead of cells it should hold, and a checkpoint never needs the buffer.
 */
public final class CellCombiner extends AbstractStreamOperator<Cells.Hit>
        implements OneInputStreamOperator<Row, Cells.Hit>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    private final long flushMs;
    private final int maxCells;
    private final byte[] masks;
    private transient Map<Tuple2<Cells.Key, Long>, long[]> buffer;
    private transient boolean flushScheduled;

    public CellCombiner(long flushMs, int maxCells, byte[] masks) {
        this.flushMs = flushMs;
        this.maxCells = maxCells;
        this.masks = masks.clone();
        setChainingStrategy(ChainingStrategy.ALWAYS);
    }

    @Override
    public void open() throws Exception {
        super.open();
        buffer = new HashMap<>();
    }

    @Override
    public void processElement(StreamRecord<Row> record) throws Exception {
        Row tag = record.getValue();
        String action = (String) tag.getField(Columns.ACTION);
        String origin = (String) tag.getField(Columns.ORIGIN);
        String brandId = (String) tag.getField(Columns.BRAND_ID);
        String categoryId = (String) tag.getField(Columns.CATEGORY_ID);
        long price = ((Number) tag.getField(Columns.PRICE)).longValue();
        Long bucket = CubeConfig.bucketOf(record.getTimestamp());
        for (byte dims : masks) {
            Cells.Key cell = new Cells.Key(action, dims, Cells.part(dims, Cells.ORIGIN, origin),
                    Cells.part(dims, Cells.BRAND, brandId), Cells.part(dims, Cells.CATEGORY, categoryId));
            long[] total = buffer.computeIfAbsent(Tuple2.of(cell, bucket), k -> new long[2]);
            total[0] += 1;
            total[1] += price;
        }
        if (buffer.size() >= maxCells) {
            flush();
        } else if (!flushScheduled) {
            flushScheduled = true;
            getProcessingTimeService().registerTimer(
                    getProcessingTimeService().getCurrentProcessingTime() + flushMs, t -> flush());
        }
    }

    private void flush() {
        flushScheduled = false;
        for (Map.Entry<Tuple2<Cells.Key, Long>, long[]> e : buffer.entrySet()) {
            long[] total = e.getValue();
            output.collect(new StreamRecord<>(new Cells.Hit(e.getKey().f0, total[0], total[1]), e.getKey().f1));
        }
        buffer.clear();
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        flush();
        super.processWatermark(mark);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        flush();
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    @Override
    public void endInput() {
        flush();
    }
}
