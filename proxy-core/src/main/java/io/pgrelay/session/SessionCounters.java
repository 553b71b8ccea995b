package io.pgrelay.session;

/**
 * What one client does while it holds a server connection: bytes, queries and transactions, with
 * their times. Kept here and added to the pool's totals at the end of each transaction, so the
 * relay path never touches a shared counter per message. Runs on the client's event loop.
 */
public final class SessionCounters {

    /** A pool's running totals (SHOW STATS). */
    public interface Totals {
        void add(
                long bytesReceived,
                long bytesSent,
                long queries,
                long queryMicros,
                long transactions,
                long transactionMicros);
    }

    /**
     * Where each query's and transaction's duration goes as it completes (histograms), with the
     * {@link System#nanoTime()} it completed at.
     */
    public interface Timings {
        void query(long nanos, long now);

        void transaction(long nanos, long now);
    }

    private final Timings timings;
    private long bytesIn;
    private long bytesOut;
    private long queries;
    private long queryNanos;
    private long transactions;
    private long transactionNanos;
    private long queryStartNanos;
    private long transactionStartNanos;

    public SessionCounters(Timings timings) {
        this.timings = timings;
    }

    /**
     * A request of {@code length} bytes went to the server at {@code now} (nanoTime); the clock
     * starts with the first.
     */
    public void request(int length, long now) {
        bytesIn += length;
        if (queryStartNanos == 0) {
            queryStartNanos = now;
            if (transactionStartNanos == 0) {
                transactionStartNanos = queryStartNanos;
            }
        }
    }

    public void reply(int length) {
        bytesOut += length;
    }

    /**
     * A ReadyForQuery at {@code now}: a query ended, and with an idle status a transaction. Returns
     * true when a transaction ended (time to add to the pool's totals).
     */
    public boolean readyForQuery(long now, boolean idle, boolean moreOutstanding) {
        if (queryStartNanos != 0) {
            long q = now - queryStartNanos;
            queries++;
            queryNanos += q;
            timings.query(q, now);
            queryStartNanos = moreOutstanding ? now : 0;
        }
        if (idle && transactionStartNanos != 0) {
            long x = now - transactionStartNanos;
            transactions++;
            transactionNanos += x;
            timings.transaction(x, now);
            transactionStartNanos = queryStartNanos;
            return true;
        }
        return false;
    }

    /** The server connection was lost: whatever was running will not complete. */
    public void abandon() {
        queryStartNanos = 0;
        transactionStartNanos = 0;
    }

    /** Adds what was counted since the last call to {@code totals}, and starts over. */
    public void addTo(Totals totals) {
        totals.add(
                bytesIn,
                bytesOut,
                queries,
                queryNanos / 1000,
                transactions,
                transactionNanos / 1000);
        bytesIn = bytesOut = queries = queryNanos = transactions = transactionNanos = 0;
    }
}
