package allezon.cube;

import allezon.Columns;

import org.apache.flink.api.common.ExecutionConfig;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.streaming.runtime.operators.windowing.WindowOperator;
import org.apache.flink.streaming.runtime.operators.windowing.WindowOperatorBuilder;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

import java.time.Duration;

/**
 * Where a tag is windowed: the aggregate cube as event-time tumbling 1-minute
 * windows, one per cell (action, dims, origin, brand_id, category_id), on the
 * watermarks of the Kafka source (flink_jobs/sql.py).
 *
 * <p>A window holds (count, sum_price), fires its running total while tags
 * arrive (RunningTotalTrigger) and is dropped from state once the watermark
 * passes its end plus the allowed lateness: the state holds minutes of cells.
 * Tags for buckets released already take the late path (LateTagRouter, then
 * allezon.sinks.CorrectionSink).
 *
 * <p>Every stateful operator has a stable uid, so a compatible change keeps its state.
 */
public final class MinuteCube {
    /** How long, and up to how many cells, tags' cells are added up before the shuffle. */
    static final long COMBINE_MS = 200;
    static final int COMBINE_MAX_CELLS = 20_000;
    static final OutputTag<Cells.Hit> LATE_FOR_WINDOW = new OutputTag<Cells.Hit>("late-for-window") { };
    static final TypeInformation<Cells.Hit> HIT_TYPE = TypeInformation.of(Cells.Hit.class);
    static final TypeInformation<Cells.Key> KEY_TYPE = TypeInformation.of(Cells.Key.class);
    /** Cube rows, by name (allezon.Columns; flink_jobs/sql.py CUBE_COLUMNS). */
    static final String[] ROW_FIELDS = {Columns.BUCKET_MS, Columns.ACTION, Columns.DIMS, Columns.ORIGIN,
        Columns.BRAND_ID, Columns.CATEGORY_ID, Columns.COUNT, Columns.SUM_PRICE};
    static final TypeInformation<Row> ROW_TYPE = Types.ROW_NAMED(ROW_FIELDS,
            Types.LONG, Types.STRING, Types.BYTE, Types.STRING, Types.STRING, Types.STRING, Types.LONG, Types.LONG);

    private final DataStream<Row> rows;
    private final DataStream<Row> veryLateTags;

    private MinuteCube(DataStream<Row> rows, DataStream<Row> veryLateTags) {
        this.rows = rows;
        this.veryLateTags = veryLateTags;
    }

    /** The cube of `tags` (rows with Columns' tag fields, timestamped with the tag's time and watermarked). */
    public static MinuteCube of(DataStream<Row> tags, CubeConfig config) {
        LateTagRouter router = new LateTagRouter(config, tags.getType());
        SingleOutputStreamOperator<Row> onTime = tags.transform("cube-late-router", tags.getType(), router)
                .uid("cube-late-router");
        SingleOutputStreamOperator<Row> cube = onTime
                .transform("cube-cells", HIT_TYPE, new CellCombiner(COMBINE_MS, COMBINE_MAX_CELLS, config.storedMasks)).uid("cube-cells")
                .keyBy(new Cells.KeyOfHit(), KEY_TYPE)
                .transform("cube-windows", ROW_TYPE, windows(config, tags.getExecutionConfig()))
                .uid("cube-windows");
        // The router's frontier is never behind the windows' watermark, so this stays empty;
        // were it not, a tag would be missing from its bucket, which must not pass silently.
        cube.getSideOutput(LATE_FOR_WINDOW).flatMap(new ReportLost()).name("cube-lost-report").uid("cube-lost-report");
        return new MinuteCube(cube, onTime.getSideOutput(router.veryLate));
    }

    /** The windows: one per cell and bucket, running totals, released after the allowed lateness. */
    static WindowOperator<Cells.Key, Cells.Hit, ?, Row, TimeWindow> windows(CubeConfig config, ExecutionConfig ec) {
        WindowOperatorBuilder<Cells.Hit, Cells.Key, TimeWindow> builder = new WindowOperatorBuilder<>(
                TumblingEventTimeWindows.of(Duration.ofMillis(CubeConfig.BUCKET_MS)),
                new RunningTotalTrigger(config.emitIntervalMs, config.allowedLatenessMs),
                ec, HIT_TYPE, new Cells.KeyOfHit(), KEY_TYPE);
        builder.allowedLateness(Duration.ofMillis(config.allowedLatenessMs));
        builder.sideOutputLateData(LATE_FOR_WINDOW);
        return builder.aggregate(new CountAndSum(), new CubeRows(), Types.TUPLE(Types.LONG, Types.LONG));
    }

    /** Cube rows (Columns: bucket_ms, action, dims, origin, brand_id, category_id, cnt, sum_price). */
    public DataStream<Row> rows() {
        return rows;
    }

    /** Tags whose bucket's window was already released: one correction per cell. */
    public DataStream<Row> veryLateTags() {
        return veryLateTags;
    }

    static final class ReportLost implements FlatMapFunction<Cells.Hit, Object> {
        private static final long serialVersionUID = 1L;

        @Override
        public void flatMap(Cells.Hit hit, Collector<Object> out) {
            throw new IllegalStateException("a tag reached a released cube window past the late router: " + hit
                    + " (the router's frontier must not lag the windows' watermark); the job restarts from its "
                    + "last checkpoint rather than miscount");
        }
    }
}
