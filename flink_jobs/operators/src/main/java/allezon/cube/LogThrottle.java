package allezon.cube;

/**
 * At most one log line per interval for an event that may repeat millions of
 * times (a replay of an old topic drops every tag past the retention). The
 * caller logs when {@link #admit} returns true, with {@link #skipped()}: the
 * events since its previous line that were not logged. A metric keeps the total.
 */
final class LogThrottle {
    private final long intervalNanos;
    private long lastNanos;
    private boolean logged;
    private long skipped;
    private long skippedAtLastLine;

    LogThrottle(long intervalNanos) {
        this.intervalNanos = intervalNanos;
    }

    /** One more event at {@code nowNanos} (a monotonic clock): true if it is to be logged. */
    boolean admit(long nowNanos) {
        if (logged && nowNanos - lastNanos < intervalNanos) {
            skipped++;
            return false;
        }
        logged = true;
        lastNanos = nowNanos;
        skippedAtLastLine = skipped;
        skipped = 0;
        return true;
    }

    /** Events not logged between the line just admitted and the one before it. */
    long skipped() {
        return skippedAtLastLine;
    }
}
