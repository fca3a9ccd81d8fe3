package allezon.sinks;

import allezon.Columns;

import com.datastax.driver.core.ResultSet;
import com.datastax.driver.core.Row;

import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * Inserts each tag as a profile row and keeps each (cookie, action) near the
 * newest {@code profileCap} rows.
 *
 * <p>Input: rows with the fields cookie, action, time_ms, kafka_partition,
 * kafka_offset and tag ({@link Columns}), keyed by (action, cookie) (see {@link CassandraSinks}). A keyed counter of
 * the rows written since the last trim marks the tag that takes it to cap +
 * slack; after that tag, the sink reads the newest cap rows and deletes the
 * older ones with one range delete. Rows still in flight may be missing from
 * that read, which only makes the delete keep more: it never removes one of
 * the newest cap rows. The delete is timestamped after every insert it covers.
 */
public final class ProfileSink extends AsyncCassandraSink<org.apache.flink.types.Row> {
    private static final long serialVersionUID = 1L;
    /** The row's numbers (bigint, int, bigint) plus framing. */
    private static final int FIXED_BYTES = 40;

    private transient ValueState<Integer> rowsSinceTrim;
    private transient CassandraTransport.Prepared insert;
    private transient CassandraTransport.Prepared newest;
    private transient CassandraTransport.Prepared trim;
    private transient List<Pending> buffer;

    public ProfileSink(SinkConfig config, CassandraTransport.Factory transports) {
        super(config, transports);
    }

    @Override
    protected void prepare() {
        buffer = new ArrayList<>();
        rowsSinceTrim = getRuntimeContext().getState(new ValueStateDescriptor<>("rows_held", Types.INT));
        insert = transport.prepare(
                "INSERT INTO user_profiles (cookie, action, time_ms, kafka_partition, kafka_offset, tag) "
                        + "VALUES (?, ?, ?, ?, ?, ?)");
        newest = transport.prepare(
                "SELECT time_ms, kafka_partition, kafka_offset FROM user_profiles "
                        + "WHERE cookie = ? AND action = ? LIMIT ?");
        trim = transport.prepare(
                "DELETE FROM user_profiles WHERE cookie = ? AND action = ? "
                        + "AND (time_ms, kafka_partition, kafka_offset) < (?, ?, ?)");
    }

    @Override
    public void invoke(org.apache.flink.types.Row row, Context context) throws Exception {
        String cookie = (String) row.getField(Columns.COOKIE);
        String action = (String) row.getField(Columns.ACTION);
        Long timeMs = (Long) row.getField(Columns.TIME_MS);
        Integer partition = (Integer) row.getField(Columns.KAFKA_PARTITION);
        Long offset = (Long) row.getField(Columns.KAFKA_OFFSET);
        String tag = (String) row.getField(Columns.TAG);
        buffer.add(new Pending(
                insert.bind(cookie, action, timeMs, partition, offset, tag),
                FIXED_BYTES + cookie.length() + action.length() + tag.length(), null));

        Integer held = rowsSinceTrim.value();
        int rows = (held == null ? 0 : held) + 1;
        boolean trimNow = rows >= config.profileCap + config.profileTrimSlack;
        rowsSinceTrim.update(trimNow ? config.profileCap : rows);
        if (trimNow) {
            throwIfFailed();
            sendBuffer();
            trimToCap(cookie, action);
        } else {
            buffered();
        }
    }

    private void trimToCap(String cookie, String action) throws InterruptedException {
        int cap = config.profileCap;
        execute(newest.bind(cookie, action, cap), (ResultSet kept) -> {
            List<Row> rows = kept.all();
            if (rows.size() < cap) {
                done();
                return;
            }
            Row oldestKept = rows.get(cap - 1);
            chain(trim.bind(cookie, action, oldestKept.getLong(0), oldestKept.getInt(1), oldestKept.getLong(2)), result -> done());
        });
    }

    @Override
    protected Collection<Pending> drainBuffer() {
        List<Pending> rows = buffer;
        buffer = new ArrayList<>();
        return rows;
    }

    @Override
    protected int bufferedRows() {
        return buffer.size();
    }
}
