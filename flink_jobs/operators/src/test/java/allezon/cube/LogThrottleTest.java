package allezon.cube;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Time is injected: a burst of events yields one line per interval, each naming what it skipped. */
class LogThrottleTest {
    @Test
    void logsTheFirstEventThenOnePerIntervalWithTheSkippedCount() {
        LogThrottle throttle = new LogThrottle(10);
        assertTrue(throttle.admit(-1_000));  // the first event, whatever the clock's origin
        assertEquals(0, throttle.skipped());
        for (long t = -999; t < -990; t++) {
            assertFalse(throttle.admit(t));
        }
        assertTrue(throttle.admit(-990));  // one interval after the last line
        assertEquals(9, throttle.skipped());
        assertTrue(throttle.admit(5_000));  // a quiet spell: logged at once, nothing skipped
        assertEquals(0, throttle.skipped());
    }
}
