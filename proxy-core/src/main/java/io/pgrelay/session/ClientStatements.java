package io.pgrelay.session;

import io.pgrelay.session.PreparedStatements.Statement;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;

/**
 * One client's named prepared statements in transaction mode: its names, mapped to the shared
 * statements, with a running count of what they make pgrelay hold (name and statement text bytes)
 * so a client can be held to {@code limits.max_client_prepared_statements} and {@code
 * limits.max_client_prepared_statement_bytes}. A statement shared with other clients is counted in
 * full for each: the limit bounds what one client can ask for, not what it costs.
 */
final class ClientStatements {

    private final Map<String, Statement> byName = new HashMap<>();
    private long bytes;

    /** Memory a name for this statement stands for: UTF-16 name chars and the statement body. */
    static long cost(String name, Statement statement) {
        return 2L * name.length() + statement.body.length;
    }

    boolean containsKey(String name) {
        return byName.containsKey(name);
    }

    Statement get(String name) {
        return byName.get(name);
    }

    void put(String name, Statement statement) {
        Statement old = byName.put(name, statement);
        if (old != null) {
            bytes -= cost(name, old);
        }
        bytes += cost(name, statement);
    }

    Statement remove(String name) {
        Statement old = byName.remove(name);
        if (old != null) {
            bytes -= cost(name, old);
        }
        return old;
    }

    Collection<Statement> values() {
        return byName.values();
    }

    void clear() {
        byName.clear();
        bytes = 0;
    }

    int size() {
        return byName.size();
    }

    long bytes() {
        return bytes;
    }
}
