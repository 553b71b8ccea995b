package io.pgrelay.session;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.pgrelay.admin.AdminView;
import io.pgrelay.protocol.Messages;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The global cache of named prepared statements for transaction pooling, shared by every client and
 * server connection (PgBouncer 1.21+ does the same).
 *
 * <p>A client's named statement ("S_1") cannot simply be sent on: in transaction mode its next Bind
 * may run on another server connection, and another client may use "S_1" for another query. So each
 * distinct statement (query text and parameter type OIDs, byte for byte) gets one pgrelay-wide
 * server-side name, {@code PGRELAY_<id>}. Clients map their own names to entries; server
 * connections remember which entries they have prepared.
 *
 * <p>An entry lives while some client maps a name to it (reference counted, updated inside the
 * map's compute so intern and release cannot race). Server connections may still hold a statement
 * whose entry is gone; their LRU evicts it eventually.
 */
public final class PreparedStatements {

    /** One distinct statement. Identity equality: the per-server sets hold entries. */
    public static final class Statement {
        final String serverName;

        /** Query string, its terminator and the parameter-type section, as in the Parse body. */
        final byte[] body;

        final Key key;
        int references;

        /** What its text says about a session (see {@link SessionState#signs}), read once. */
        final SessionState.Signs signs;

        Statement(long id, Key key) {
            this.serverName = "PGRELAY_" + id;
            this.body = key.bytes;
            this.key = key;
            this.signs =
                    SessionState.signs(
                            body,
                            Math.min(body.length, SessionState.SCAN_LIMIT),
                            body.length > SessionState.SCAN_LIMIT);
        }

        /** A Parse message that prepares this statement under its server-side name. */
        ByteBuf parseMessage(ByteBufAllocator alloc) {
            return Messages.parse(alloc, serverName, body);
        }

        /** The pgrelay-wide name it is prepared under on servers, PGRELAY_<id>. */
        public String serverName() {
            return serverName;
        }

        /** Client names mapped to it now (read outside the cache's compute: a snapshot). */
        public int references() {
            return references;
        }

        @Override
        public String toString() {
            return serverName;
        }
    }

    /** Query bytes + parameter types: equal only if byte for byte identical. */
    static final class Key {
        final byte[] bytes;
        private final int hash;

        Key(byte[] bytes) {
            this.bytes = bytes;
            this.hash = Arrays.hashCode(bytes);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && k.hash == hash && Arrays.equals(k.bytes, bytes);
        }

        @Override
        public int hashCode() {
            return hash;
        }
    }

    private final Map<Key, Statement> statements = new ConcurrentHashMap<>();
    private final AtomicLong ids = new AtomicLong();

    /** Sum of the bodies of the entries in {@link #statements}; changed only inside its compute. */
    private final AtomicLong bytes = new AtomicLong();

    private final long maxBytes;

    /**
     * A cache that holds at most {@code maxBytes} of statement text
     * (limits.prepared_statement_cache_size).
     */
    public PreparedStatements(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    /**
     * The entry for this Parse body, with one more reference; null when it is new and the cache has
     * no room for it (existing entries are always shared).
     */
    public Statement intern(byte[] parseBody) {
        Key key = new Key(parseBody);
        Statement[] out = new Statement[1];
        statements.compute(
                key,
                (k, existing) -> {
                    Statement s = existing;
                    if (s == null) {
                        if (bytes.get() + k.bytes.length > maxBytes) {
                            return null;
                        }
                        s = new Statement(ids.incrementAndGet(), k);
                        bytes.addAndGet(k.bytes.length);
                    }
                    s.references++;
                    out[0] = s;
                    return s;
                });
        return out[0];
    }

    /** Drops one reference; the entry leaves the cache with its last one. */
    public void release(Statement statement) {
        statements.computeIfPresent(
                statement.key,
                (k, s) -> {
                    if (s != statement) {
                        return s;
                    }
                    if (--s.references > 0) {
                        return s;
                    }
                    bytes.addAndGet(-s.body.length);
                    return null;
                });
    }

    /** SHOW PREPARED_STATEMENTS: one row per shared statement. */
    public List<AdminView.PreparedStatementRow> rows() {
        List<AdminView.PreparedStatementRow> rows = new ArrayList<>();
        for (Statement s : statements.values()) {
            int end = 0;
            while (end < s.body.length && s.body[end] != 0) {
                end++;
            }
            String query = new String(s.body, 0, end, StandardCharsets.UTF_8);
            StringBuilder types = new StringBuilder();
            if (end + 3 <= s.body.length) {
                int n = ((s.body[end + 1] & 0xff) << 8) | (s.body[end + 2] & 0xff);
                for (int i = 0; i < n && end + 7 + 4 * i <= s.body.length; i++) {
                    int at = end + 3 + 4 * i;
                    int oid =
                            ((s.body[at] & 0xff) << 24)
                                    | ((s.body[at + 1] & 0xff) << 16)
                                    | ((s.body[at + 2] & 0xff) << 8)
                                    | (s.body[at + 3] & 0xff);
                    types.append(i == 0 ? "" : ",").append(oid);
                }
            }
            rows.add(
                    new AdminView.PreparedStatementRow(
                            s.serverName, query, types.toString(), s.references, 0));
        }
        rows.sort((a, b) -> a.name().compareTo(b.name()));
        return rows;
    }

    public int size() {
        return statements.size();
    }

    /** Bytes held by statement texts and parameter types (the bulk of the cache). */
    public long bytes() {
        return bytes.get();
    }
}
