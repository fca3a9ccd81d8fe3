package allezon.cube;

import static allezon.cube.CubeTesting.MINUTE;
import static allezon.cube.CubeTesting.T0;
import static allezon.cube.CubeTesting.tag;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Cells added up before the shuffle, and never held across a watermark or a barrier. */
class CellCombinerTest {
    static OneInputStreamOperatorTestHarness<Row, Cells.Hit> harness() throws Exception {
        OneInputStreamOperatorTestHarness<Row, Cells.Hit> h =
                new OneInputStreamOperatorTestHarness<>(new CellCombiner(200, 1000, CubeTesting.STORED_MASKS));
        h.setProcessingTime(0);
        h.open();
        return h;
    }

    static Map<String, List<Long>> hits(List<Object> out) {
        Map<String, List<Long>> cells = new HashMap<>();
        for (Object o : out) {
            if (o instanceof StreamRecord) {
                @SuppressWarnings("unchecked")
                StreamRecord<Cells.Hit> r = (StreamRecord<Cells.Hit>) o;
                Cells.Hit h = r.getValue();
                cells.put(h.f1 + "|" + h.f2 + "|" + h.f3 + "|" + h.f4 + "@" + CubeConfig.bucketOf(r.getTimestamp()),
                        List.of(h.f5, h.f6));
            }
        }
        return cells;
    }

    @Test
    void eachTagCountsInACellPerStoredMaskAddedUpPerBucket() throws Exception {
        var h = harness();
        h.processElement(tag(T0 + 1, "VIEW", "o1", "b1", "c1", 10, 0, 1), T0 + 1);
        h.processElement(tag(T0 + 2, "VIEW", "o2", "b1", "c1", 5, 0, 2), T0 + 2);
        h.processElement(tag(T0 + MINUTE, "VIEW", "o1", "b1", "c1", 1, 0, 3), T0 + MINUTE);
        assertEquals(0, h.getOutput().size(), "held until the flush");
        h.setProcessingTime(200);
        Map<String, List<Long>> cells = hits(new ArrayList<>(h.getOutput()));
        assertEquals(List.of(2L, 15L), cells.get("0|||@" + T0));
        assertEquals(List.of(1L, 10L), cells.get("1|o1||@" + T0));
        assertEquals(List.of(2L, 15L), cells.get("6||b1|c1@" + T0));
        assertEquals(List.of(1L, 5L), cells.get("7|o2|b1|c1@" + T0));
        assertEquals(List.of(1L, 1L), cells.get("0|||@" + (T0 + MINUTE)));
        assertFalse(cells.containsKey("3|o1|b1|@" + T0) || cells.containsKey("5|o1||c1@" + T0),
                "origin+brand and origin+category are read from the finest cells");
        // T0: 0, 1 (o1, o2), 2, 4, 6 and 7 (o1, o2); T0 + 1 min: one per stored mask.
        assertEquals(8 + 6, cells.size(), cells.toString());
        h.close();
    }

    @Test
    void theBufferGoesOutBeforeAWatermarkAndBeforeABarrier() throws Exception {
        var h = harness();
        h.processElement(tag(T0, 1, 1), T0);
        h.processWatermark(T0 + MINUTE);
        List<Object> out = new ArrayList<>(h.getOutput());
        assertEquals(CubeTesting.STORED_MASKS.length + 1, out.size());
        assertInstanceOf(Watermark.class, out.get(CubeTesting.STORED_MASKS.length), "the cells precede the watermark");

        h.getOutput().clear();
        h.processElement(tag(T0 + MINUTE, 1, 2), T0 + MINUTE);
        h.prepareSnapshotPreBarrier(1);
        assertEquals(CubeTesting.STORED_MASKS.length, h.getOutput().size());
        assertTrue(hits(new ArrayList<>(h.getOutput())).containsKey("0|||@" + (T0 + MINUTE)));
        h.close();
    }
}
