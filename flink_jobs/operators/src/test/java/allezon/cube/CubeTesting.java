package allezon.cube;

import allezon.Columns;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.apache.flink.types.RowUtils;

import java.util.LinkedHashMap;

/** Tag rows and settings for the cube's tests: explicit event times, no clocks. */
public final class CubeTesting {
    private CubeTesting() {
    }

    /** 2022-03-22T12:15:00Z, a bucket start. */
    public static final long T0 = 1647951300000L;
    public static final long MINUTE = CubeConfig.BUCKET_MS;
    public static final long LATENESS = 3 * MINUTE;
    public static final long RETENTION = 60 * MINUTE;
    public static final long EMIT_MS = 1000;
    /** The stored masks of common/cube.py STORED_MASKS (no 3, no 5: read from 7). */
    public static final byte[] STORED_MASKS = {0, 1, 2, 4, 6, 7};
    public static final CubeConfig CONFIG = CubeConfig.of(LATENESS, RETENTION, EMIT_MS, STORED_MASKS);

    private static final String[] TAG_FIELDS = {Columns.COOKIE, Columns.ACTION, Columns.ORIGIN, Columns.BRAND_ID,
        Columns.CATEGORY_ID, Columns.PRICE, Columns.TIME_MS, Columns.KAFKA_PARTITION, Columns.KAFKA_OFFSET};
    private static final LinkedHashMap<String, Integer> TAG_POSITIONS = new LinkedHashMap<>();

    /** The tag rows' type, as the SQL side declares them. */
    public static final TypeInformation<Row> TAG_TYPE = Types.ROW_NAMED(TAG_FIELDS, Types.STRING, Types.STRING,
            Types.STRING, Types.STRING, Types.STRING, Types.INT, Types.LONG, Types.INT, Types.LONG);

    static {
        for (String name : TAG_FIELDS) {
            TAG_POSITIONS.put(name, TAG_POSITIONS.size());
        }
    }

    /** A tag row as the SQL side's rows carry it (positional, with names). */
    public static Row tag(long timeMs, String action, String origin, String brandId, String categoryId, int price,
                          int partition, long offset) {
        Row row = RowUtils.createRowWithNamedPositions(RowKind.INSERT, new Object[TAG_FIELDS.length], TAG_POSITIONS);
        row.setField(Columns.COOKIE, "c" + offset);
        row.setField(Columns.ACTION, action);
        row.setField(Columns.ORIGIN, origin);
        row.setField(Columns.BRAND_ID, brandId);
        row.setField(Columns.CATEGORY_ID, categoryId);
        row.setField(Columns.PRICE, price);
        row.setField(Columns.TIME_MS, timeMs);
        row.setField(Columns.KAFKA_PARTITION, partition);
        row.setField(Columns.KAFKA_OFFSET, offset);
        return row;
    }

    public static Row tag(long timeMs, int price, long offset) {
        return tag(timeMs, "VIEW", "o", "b", "c", price, 0, offset);
    }
}
