package allezon.sinks;

/**
 * Names of the row fields the sinks read: the columns of the job's SELECTs
 * (flink_jobs/sql.py CUBE_COLUMNS and PROFILE_COLUMNS). Rows cross from SQL
 * by these names, not by position.
 */
final class Columns {
    private Columns() {
    }

    // Both streams.
    static final String ACTION = "action";

    // The cube's changelog (sql.py cube_query).
    static final String BUCKET_MS = "bucket_ms";
    static final String DIMS = "dims";
    static final String ORIGIN = "origin";
    static final String BRAND_ID = "brand_id";
    static final String CATEGORY_ID = "category_id";
    static final String COUNT = "cnt";
    static final String SUM_PRICE = "sum_price";

    // The tag rows (sql.py tag_rows_query), each a profile row.
    static final String COOKIE = "cookie";
    static final String TIME_MS = "time_ms";
    static final String KAFKA_PARTITION = "kafka_partition";
    static final String KAFKA_OFFSET = "kafka_offset";
    static final String TAG = "tag";
}
