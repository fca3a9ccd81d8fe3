package allezon;

/**
 * Names of the row fields the job's Java operators read and write: the
 * columns of flink_jobs/sql.py (CUBE_COLUMNS, PROFILE_COLUMNS, CUBE_INPUT_COLUMNS). Rows cross from SQL
 * by these names, not by position.
 */
public final class Columns {
    private Columns() {
    }

    // Both streams.
    public static final String ACTION = "action";

    // The cube's changelog (sql.py cube_query).
    public static final String BUCKET_MS = "bucket_ms";
    public static final String DIMS = "dims";
    public static final String ORIGIN = "origin";
    public static final String BRAND_ID = "brand_id";
    public static final String CATEGORY_ID = "category_id";
    public static final String COUNT = "cnt";
    public static final String SUM_PRICE = "sum_price";

    // The tag rows (sql.py tag_rows_query): a profile row, and what the cube reads.
    public static final String PRICE = "price";
    public static final String COOKIE = "cookie";
    public static final String TIME_MS = "time_ms";
    public static final String KAFKA_PARTITION = "kafka_partition";
    public static final String KAFKA_OFFSET = "kafka_offset";
    public static final String TAG = "tag";
}
