package io.pgrelay.session;

import io.pgrelay.session.PreparedStatements.Statement;
import java.util.Iterator;
import java.util.LinkedHashMap;

/**
 * The shared statements prepared on one server connection, least recently used first. The server
 * connection owns the set; only the client linked to it changes it, on that client's event loop
 * (the pool's lock orders the hand-over between clients).
 *
 * <p>A LinkedHashMap in access order rather than Caffeine: eviction must happen synchronously, in
 * the middle of a pipeline, so that the Close of an evicted statement goes out in order.
 */
public final class ServerStatements {

    private final LinkedHashMap<Statement, Boolean> prepared = new LinkedHashMap<>(16, 0.75f, true);

    /** Whether the statement is prepared here; counts as a use for the LRU order. */
    boolean has(Statement statement) {
        return prepared.get(statement) != null;
    }

    void add(Statement statement) {
        prepared.put(statement, Boolean.TRUE);
    }

    void remove(Statement statement) {
        prepared.remove(statement);
    }

    /** DISCARD ALL, DEALLOCATE ALL: nothing is prepared any more. */
    public void clear() {
        prepared.clear();
    }

    /** The least recently used statement, removed, while more than {@code keep} are prepared. */
    Statement evictBeyond(int keep) {
        if (prepared.isEmpty() || prepared.size() <= keep) {
            return null;
        }
        Iterator<Statement> it = prepared.keySet().iterator();
        Statement oldest = it.next();
        it.remove();
        return oldest;
    }

    /** For SHOW SERVERS; read from other threads, so only an approximation there. */
    public int size() {
        return prepared.size();
    }
}
