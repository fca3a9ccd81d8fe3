package allezon.sinks;

import allezon.cube.CubeConfig;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeHint;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.runtime.state.FunctionInitializationContext;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Retention by event time for a sink of cube rows: the (bucket, action) pairs
 * it has written, and which of them the watermark has pushed past the
 * retention. The sink deletes those buckets' partitions (every dims mask) and
 * forgets them, so what it tracks is bounded by the retention.
 *
 * <p>Kept in union operator state: after a rescale every subtask knows every
 * bucket, and a bucket deleted twice costs only a second tombstone.
 */
final class Retention {
    private final CubeConfig cube;
    private final TreeMap<Long, Set<String>> written = new TreeMap<>();
    private ListState<Tuple2<Long, String>> state;

    Retention(CubeConfig cube) {
        this.cube = cube;
    }

    void initializeState(FunctionInitializationContext context) throws Exception {
        state = context.getOperatorStateStore().getUnionListState(new ListStateDescriptor<>(
                "written-buckets", TypeInformation.of(new TypeHint<Tuple2<Long, String>>() { })));
        for (Tuple2<Long, String> b : state.get()) {
            note(b.f0, b.f1);
        }
    }

    void snapshotState() throws Exception {
        List<Tuple2<Long, String>> all = new ArrayList<>();
        for (Map.Entry<Long, Set<String>> e : written.entrySet()) {
            for (String action : e.getValue()) {
                all.add(Tuple2.of(e.getKey(), action));
            }
        }
        state.update(all);
    }

    void note(long bucket, String action) {
        written.computeIfAbsent(bucket, k -> new HashSet<>(2)).add(action);
    }

    /** The (bucket, action) pairs now past the retention, removed from what is tracked. */
    List<Tuple2<Long, String>> expired(long watermark) {
        List<Tuple2<Long, String>> out = new ArrayList<>();
        while (!written.isEmpty() && cube.expired(written.firstKey(), watermark)) {
            Map.Entry<Long, Set<String>> e = written.pollFirstEntry();
            for (String action : e.getValue()) {
                out.add(Tuple2.of(e.getKey(), action));
            }
        }
        return out;
    }

    int tracked() {
        return written.size();
    }
}
