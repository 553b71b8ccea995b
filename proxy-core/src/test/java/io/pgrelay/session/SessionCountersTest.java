package io.pgrelay.session;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Bytes, queries and transactions counted per session and added to the pool's totals. */
class SessionCountersTest {

    private static final class Recorder implements SessionCounters.Timings, SessionCounters.Totals {
        final List<Long> queries = new ArrayList<>();
        final List<Long> transactions = new ArrayList<>();
        final List<long[]> totals = new ArrayList<>();

        @Override
        public void query(long nanos, long now) {
            queries.add(nanos);
        }

        @Override
        public void transaction(long nanos, long now) {
            transactions.add(nanos);
        }

        @Override
        public void add(
                long bytesReceived,
                long bytesSent,
                long queries,
                long queryMicros,
                long transactions,
                long transactionMicros) {
            totals.add(
                    new long[] {
                        bytesReceived,
                        bytesSent,
                        queries,
                        queryMicros,
                        transactions,
                        transactionMicros
                    });
        }
    }

    @Test
    void oneQueryTransaction() {
        Recorder r = new Recorder();
        SessionCounters c = new SessionCounters(r);
        long start = System.nanoTime();
        c.request(30, start);
        c.reply(100);
        c.reply(6);
        long end = start + 5_000_000_000L;
        assertTrue(c.readyForQuery(end, true, false), "a transaction ended");
        c.addTo(r);
        assertEquals(1, r.totals.size());
        long[] t = r.totals.get(0);
        assertEquals(30, t[0]);
        assertEquals(106, t[1]);
        assertEquals(1, t[2]);
        assertEquals(1, t[4]);
        assertEquals(r.queries.get(0) / 1000, t[3]);
        assertEquals(r.transactions.get(0) / 1000, t[5]);
        assertEquals(5_000_000, t[3], "micros from the request to the ReadyForQuery");
        // Counted since the last call only.
        c.addTo(r);
        assertArrayEquals(new long[6], r.totals.get(1));
    }

    @Test
    void transactionOfSeveralQueries() {
        Recorder r = new Recorder();
        SessionCounters c = new SessionCounters(r);
        long t0 = System.nanoTime();
        c.request(10, t0); // BEGIN
        assertFalse(c.readyForQuery(t0 + 1_000_000, false, false));
        c.request(20, t0 + 2_000_000); // INSERT
        c.request(20, t0 + 2_000_000); // pipelined INSERT
        assertFalse(c.readyForQuery(t0 + 3_000_000, false, true));
        assertFalse(c.readyForQuery(t0 + 4_000_000, false, false));
        c.request(10, t0 + 5_000_000); // COMMIT
        assertTrue(c.readyForQuery(t0 + 9_000_000, true, false));
        assertEquals(List.of(1_000_000L, 1_000_000L, 1_000_000L, 4_000_000L), r.queries);
        assertEquals(List.of(9_000_000L), r.transactions);
        assertEquals(1_000_000, r.queries.get(2), "the pipelined one timed from the previous end");
        c.addTo(r);
        long[] t = r.totals.get(0);
        assertEquals(60, t[0]);
        assertEquals(0, t[1]);
        assertEquals(4, t[2]);
        assertEquals(1, t[4]);
        long sum = r.queries.stream().mapToLong(Long::longValue).sum();
        assertEquals(sum / 1000, t[3]);
        assertEquals(r.transactions.get(0) / 1000, t[5]);
    }

    @Test
    void readyForQueryWithoutARequestCountsNothing() {
        Recorder r = new Recorder();
        SessionCounters c = new SessionCounters(r);
        assertFalse(c.readyForQuery(System.nanoTime(), true, false));
        assertEquals(List.of(), r.queries);
        assertEquals(List.of(), r.transactions);
    }

    @Test
    void abandonedWorkIsNotTimed() {
        Recorder r = new Recorder();
        SessionCounters c = new SessionCounters(r);
        c.request(10, System.nanoTime());
        c.abandon();
        assertFalse(c.readyForQuery(System.nanoTime(), true, false));
        c.addTo(r);
        assertArrayEquals(new long[] {10, 0, 0, 0, 0, 0}, r.totals.get(0), "bytes still count");
    }
}
