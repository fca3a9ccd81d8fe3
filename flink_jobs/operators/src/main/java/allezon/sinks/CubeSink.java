package allezon.sinks;

import allezon.Columns;

import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Upserts the cube's absolute (count, sum_price) per cell and bucket, as the
 * window of that cell counts it (allezon.cube.MinuteCube); the newest figure
 * of a cell wins.
 *
 * <p>Input: rows with the fields {@link Columns} names (bucket_ms, action, dims, origin,
 * brand_id, category_id, cnt, sum_price). UPDATE_BEFORE rows are skipped: the matching UPDATE_AFTER
 * carries the new absolute figure. A cell updated twice within one flush
 * period is written once. Rows are sent grouped by partition (action, dims,
 * bucket): one batch, one Cassandra mutation, per partition and flush.
 */
public final class CubeSink extends CubeTableSink<Row> {
    private static final long serialVersionUID = 1L;
    /** Values of a cube row besides its strings (tinyint, 3 bigints) plus framing. */
    private static final int FIXED_BYTES = 48;

    private transient CassandraTransport.Prepared upsert;
    /** Partition -> cell -> its newest figure. */
    private transient Map<List<Object>, Map<List<Object>, Pending>> newestPerCell;
    private transient int bufferedCells;

    public CubeSink(SinkConfig config, CassandraTransport.Factory transports) {
        super(config, transports);
    }

    @Override
    protected void prepare() {
        newestPerCell = new LinkedHashMap<>();
        prepareRetention();
        // The window's own row of the cell: late position (-1, -1); corrections have a tag's Kafka position.
        upsert = transport.prepare("INSERT INTO " + TABLE + " (action, dims, bucket_ms, origin, brand_id, category_id, "
                + "late_partition, late_offset, count, sum_price) VALUES (?, ?, ?, ?, ?, ?, -1, -1, ?, ?)");
    }

    @Override
    public void invoke(Row row, Context context) throws Exception {
        RowKind kind = row.getKind();
        if (kind == RowKind.UPDATE_BEFORE || kind == RowKind.DELETE) {
            return;
        }
        long bucketMs = (Long) row.getField(Columns.BUCKET_MS);
        String action = (String) row.getField(Columns.ACTION);
        Byte dims = (Byte) row.getField(Columns.DIMS);
        String origin = (String) row.getField(Columns.ORIGIN);
        String brandId = (String) row.getField(Columns.BRAND_ID);
        String categoryId = (String) row.getField(Columns.CATEGORY_ID);
        Long count = (Long) row.getField(Columns.COUNT);
        Long sumPrice = (Long) row.getField(Columns.SUM_PRICE);
        List<Object> partition = Arrays.asList(action, dims, bucketMs);
        Pending figure = new Pending(
                upsert.bind(action, dims, bucketMs, origin, brandId, categoryId, count, sumPrice),
                FIXED_BYTES + action.length() + origin.length() + brandId.length() + categoryId.length(),
                partition);
        Pending older = newestPerCell.computeIfAbsent(partition, k -> new HashMap<>())
                .put(Arrays.asList(origin, brandId, categoryId), figure);
        if (older == null) {
            bufferedCells++;
        }
        written(bucketMs, action);
        sweep(context.currentWatermark());
        buffered();
    }

    @Override
    protected Collection<Pending> drainBuffer() {
        List<Pending> rows = new ArrayList<>(bufferedCells);
        for (Map<List<Object>, Pending> cells : newestPerCell.values()) {
            rows.addAll(cells.values());
        }
        newestPerCell.clear();
        bufferedCells = 0;
        return rows;
    }

    @Override
    protected int bufferedRows() {
        return bufferedCells;
    }
}
