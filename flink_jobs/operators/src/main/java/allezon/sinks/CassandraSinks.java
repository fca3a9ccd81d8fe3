package allezon.sinks;

import allezon.Columns;

import allezon.cube.MinuteCube;

import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.types.Row;

import java.util.Map;

/**
 * Where the job's results are stored: the Cassandra sinks, attached by the
 * Python job (flink_jobs/user_tags_job.py, via flink_jobs/sinks.py) to the
 * cube and the tag rows, so that no cube row or profile row crosses into Python.
 */
public final class CassandraSinks {
    private CassandraSinks() {
    }

    /**
     * Build the cube of the tag rows (sql.py tag_rows_query) and attach the cube sink to its rows, the
     * correction sink to its very late tags, and the profile sink to the tag rows.
     */
    public static void attach(DataStream<Row> tagRows, Map<String, String> settings) {
        SinkConfig config = SinkConfig.from(settings);
        CassandraTransport.Factory transports = new DriverTransport.Opener();
        MinuteCube cube = MinuteCube.of(tagRows, config.cube);
        cube.rows().addSink(new CubeSink(config, transports)).name("cassandra-aggregates").uid("cassandra-aggregates");
        cube.veryLateTags().addSink(new CorrectionSink(config, transports))
                .name("cassandra-corrections").uid("cassandra-corrections");
        tagRows.keyBy(new ActionAndCookie())
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
