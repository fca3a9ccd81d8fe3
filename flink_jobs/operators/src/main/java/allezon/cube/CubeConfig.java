package allezon.cube;

import java.io.Serializable;
import java.util.Map;

/**
 * The cube's settings, from the job's environment (flink_jobs/config.py
 * JobSettings, passed on by flink_jobs/sinks.py).
 */
public final class CubeConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Bucket length: common/cube.py BUCKET_MS. */
    public static final long BUCKET_MS = 60_000;

    /** A window's state is kept this long (event time) after its end; later tags take the late path. */
    public final long allowedLatenessMs;
    /** Buckets this far (event time) behind the watermark are deleted, and tags for them dropped. */
    public final long retentionMs;
    /** A cell's running total is written at most this often (processing time) while tags arrive. */
    public final long emitIntervalMs;
    /** The dims masks a tag has cells in: common/cube.py STORED_MASKS (the query API reads the others from 7). */
    public final byte[] storedMasks;

    private CubeConfig(long allowedLatenessMs, long retentionMs, long emitIntervalMs, byte[] storedMasks) {
        if (allowedLatenessMs < 0 || retentionMs <= allowedLatenessMs + BUCKET_MS || emitIntervalMs <= 0) {
            throw new IllegalArgumentException("cube settings out of range: lateness " + allowedLatenessMs
                    + " ms, retention " + retentionMs + " ms, emit interval " + emitIntervalMs + " ms");
        }
        for (byte dims : storedMasks) {
            if (dims < 0 || dims >= Cells.MASKS) {
                throw new IllegalArgumentException("cube mask out of range: " + dims);
            }
        }
        this.allowedLatenessMs = allowedLatenessMs;
        this.retentionMs = retentionMs;
        this.emitIntervalMs = emitIntervalMs;
        this.storedMasks = storedMasks.clone();
    }

    public static CubeConfig of(long allowedLatenessMs, long retentionMs, long emitIntervalMs, byte[] storedMasks) {
        return new CubeConfig(allowedLatenessMs, retentionMs, emitIntervalMs, storedMasks);
    }

    public static CubeConfig from(Map<String, String> m) {
        String[] masks = required(m, "stored_masks").split(",");
        byte[] stored = new byte[masks.length];
        for (int i = 0; i < masks.length; i++) {
            stored[i] = Byte.parseByte(masks[i].trim());
        }
        return new CubeConfig(Long.parseLong(required(m, "allowed_lateness_ms")),
                Long.parseLong(required(m, "retention_ms")), Long.parseLong(required(m, "emit_interval_ms")), stored);
    }

    private static String required(Map<String, String> m, String key) {
        String value = m.get(key);
        if (value == null) {
            throw new IllegalArgumentException("cube setting missing: " + key);
        }
        return value;
    }

    /** Start of the bucket holding {@code timeMs} (floor, also before 1970). */
    public static long bucketOf(long timeMs) {
        return Math.floorDiv(timeMs, BUCKET_MS) * BUCKET_MS;
    }

    /**
     * Whether a bucket's window is past its allowed lateness at this watermark:
     * the same test as Flink's WindowOperator (window max timestamp + lateness
     * at or below the watermark), so a tag the router lets through is never
     * dropped by the window.
     */
    public boolean released(long bucketMs, long watermark) {
        return bucketMs + BUCKET_MS - 1 + allowedLatenessMs <= watermark;
    }

    /** Whether a bucket is past the retention at this watermark (its data may be deleted). */
    public boolean expired(long bucketMs, long watermark) {
        return bucketMs + BUCKET_MS - 1 + retentionMs <= watermark;
    }
}
