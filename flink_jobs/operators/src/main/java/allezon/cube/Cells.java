package allezon.cube;

import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple5;
import org.apache.flink.api.java.tuple.Tuple7;

/**
 * A tag's cells: one per stored subset of (origin, brand_id, category_id), as in
 * common/cube.py (bit mask dims: 1 origin, 2 brand_id, 4 category_id; a
 * dimension outside the mask is stored as ''). Which masks are stored is
 * CubeConfig's storedMasks; MASKS counts every subset.
 */
public final class Cells {
    private Cells() {
    }

    public static final byte ORIGIN = 1;
    public static final byte BRAND = 2;
    public static final byte CATEGORY = 4;
    public static final byte MASKS = 8;

    /** (action, dims, origin, brand_id, category_id): a cube cell within a bucket. */
    public static final class Key extends Tuple5<String, Byte, String, String, String> {
        private static final long serialVersionUID = 1L;

        public Key() {
        }

        Key(String action, byte dims, String origin, String brandId, String categoryId) {
            super(action, dims, origin, brandId, categoryId);
        }
    }

    /**
     * Tags' contribution to a cell of one bucket: the cell's key fields, how many
     * tags and the sum of their prices; the record's timestamp lies in the bucket.
     */
    public static final class Hit extends Tuple7<String, Byte, String, String, String, Long, Long> {
        private static final long serialVersionUID = 1L;

        public Hit() {
        }

        Hit(Key cell, long count, long sumPrice) {
            super(cell.f0, cell.f1, cell.f2, cell.f3, cell.f4, count, sumPrice);
        }
    }

    /** A dimension's stored value in the cell of mask {@code dims}. */
    public static String part(byte dims, byte bit, String value) {
        return (dims & bit) != 0 ? value : "";
    }

    public static final class KeyOfHit implements KeySelector<Hit, Key> {
        private static final long serialVersionUID = 1L;

        @Override
        public Key getKey(Hit h) {
            return new Key(h.f0, h.f1, h.f2, h.f3, h.f4);
        }
    }
}
