package allezon.sinks;

import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.types.Row;

import java.util.Map;

/**
 * Where the job's results are stored: the Cassandra sinks, attached by the
 * Python job (flink_jobs/user_tags_job.py) to the streams of its SQL half, so
 * that no cube row or profile row crosses into Python.
 */
public final class CassandraSinks {
    private CassandraSinks() {
    }

    /** Attach the cube sink to the cube's changelog and the profile sink to the tag rows (sql.py tag_rows_query). */
    public static void attach(DataStream<Row> cubeChangelog, DataStream<Row> profileRows, Map<String, String> settings) {
        SinkConfig config = SinkConfig.from(settings);
        CassandraTransport.Factory transports = new DriverTransport.Opener();
        cubeChangelog.addSink(new CubeSink(config, transports)).name("cassandra-aggregates").uid("cassandra-aggregates");
        profileRows.keyBy(new ActionAndCookie())
                .addSink(new ProfileSink(config, transports)).name("cassandra-profiles").uid("cassandra-profiles");
    }

    /** The profile sink's key: its trim counter is per (cookie, action). */
    static final class ActionAndCookie implements KeySelector<Row, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(Row row) {
            return row.getField(Columns.ACTION) + "|" + row.getField(Columns.COOKIE);
        }
    }
}
