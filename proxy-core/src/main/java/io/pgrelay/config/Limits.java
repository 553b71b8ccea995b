package io.pgrelay.config;

/**
 * Bounds on what clients can make pgrelay hold, so that no client, however it behaves, can exhaust
 * the process's memory or its connection slots ({@code pgrelay.limits}).
 *
 * @param maxClientPreparedStatements named prepared statements one client may have (transaction
 *     mode)
 * @param maxClientPreparedStatementBytes statement text and names one client may have prepared
 * @param preparedStatementCacheBytes statement text in the shared statement cache, all clients
 *     together
 * @param maxBufferedMessageBytes large messages being received, all connections together
 * @param maxLoginClients connections still logging in (not counted against max_client_conn)
 */
public record Limits(
        int maxClientPreparedStatements,
        long maxClientPreparedStatementBytes,
        long preparedStatementCacheBytes,
        long maxBufferedMessageBytes,
        int maxLoginClients) {

    /**
     * Why a client may not have {@code count} statements taking {@code bytes}, or null if it may.
     */
    public String checkClientStatements(int count, long bytes) {
        if (count > maxClientPreparedStatements) {
            return "too many prepared statements: this connection may have at most "
                    + maxClientPreparedStatements
                    + " (limits.max_client_prepared_statements); DEALLOCATE some first";
        }
        if (bytes > maxClientPreparedStatementBytes) {
            return "prepared statements too large: this connection's statements may take at most "
                    + maxClientPreparedStatementBytes
                    + " bytes (limits.max_client_prepared_statement_bytes);"
                    + " DEALLOCATE some first";
        }
        return null;
    }
}
