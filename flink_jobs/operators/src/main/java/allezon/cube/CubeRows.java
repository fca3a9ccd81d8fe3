package allezon.cube;

import allezon.Columns;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.apache.flink.types.RowUtils;
import org.apache.flink.util.Collector;

import java.util.LinkedHashMap;

/** A cell's window total as a cube row (Columns: bucket_ms, action, dims, origin, brand_id, category_id, cnt, sum_price). */
public final class CubeRows extends ProcessWindowFunction<Tuple2<Long, Long>, Row, Cells.Key, TimeWindow> {
    private static final long serialVersionUID = 1L;

    @Override
    public void process(Cells.Key cell, Context context, Iterable<Tuple2<Long, Long>> totals, Collector<Row> out) {
        Tuple2<Long, Long> total = totals.iterator().next();
        out.collect(row(context.window().getStart(), cell, total.f0, total.f1));
    }

    /** Rows are positional with names (as the SQL side's are), so Flink's RowSerializer can copy them. */
    private static final LinkedHashMap<String, Integer> POSITIONS = new LinkedHashMap<>();

    static {
        for (String name : MinuteCube.ROW_FIELDS) {
            POSITIONS.put(name, POSITIONS.size());
        }
    }

    static Row row(long bucketMs, Cells.Key cell, long count, long sumPrice) {
        Row row = RowUtils.createRowWithNamedPositions(RowKind.INSERT, new Object[POSITIONS.size()], POSITIONS);
        row.setField(Columns.BUCKET_MS, bucketMs);
        row.setField(Columns.ACTION, cell.f0);
        row.setField(Columns.DIMS, cell.f1);
        row.setField(Columns.ORIGIN, cell.f2);
        row.setField(Columns.BRAND_ID, cell.f3);
        row.setField(Columns.CATEGORY_ID, cell.f4);
        row.setField(Columns.COUNT, count);
        row.setField(Columns.SUM_PRICE, sumPrice);
        return row;
    }
}
