package io.pgrelay.admin;

import java.util.concurrent.CompletableFuture;

/**
 * The console's control commands (admin_users only). Each returns a future of an error message, or
 * of null on success; {@link #done()} and {@link #failed} make the immediate cases one-liners. A
 * database argument of null means "all databases".
 *
 * <p>A future may complete later and on any thread: PAUSE and WAIT_CLOSE complete once the servers
 * concerned are released, and a PAUSE must also complete (successfully, or with an error message)
 * if it is overtaken, e.g. by a RESUME from another console, or by shutdown. The console holds that
 * client's further output until then, so a future that never completes leaves the console client
 * waiting (as PgBouncer's PAUSE does) until it disconnects. An exceptionally completed future is
 * reported as an internal error.
 *
 * <p>Failure messages are sent as ErrorResponse with SQLSTATE 55000 (22023 for SET); use
 * PgBouncer's wording where one exists ("no such database: x", "pooler is not paused/suspended",
 * "already suspended/paused", "database x is not paused", "client not found").
 */
public interface AdminControl {

    CompletableFuture<String> pause(String database);

    CompletableFuture<String> resume(String database);

    CompletableFuture<String> reconnect(String database);

    CompletableFuture<String> kill(String database);

    CompletableFuture<String> killClient(long clientId);

    /** DISABLE db: refuse new clients of the database. */
    CompletableFuture<String> disable(String database);

    CompletableFuture<String> enable(String database);

    CompletableFuture<String> reload();

    /**
     * SHUTDOWN. For {@link ShutdownMode#IMMEDIATE} PgBouncer never answers (the process exits under
     * the client); completing the future is optional.
     */
    CompletableFuture<String> shutdown(ShutdownMode mode);

    /** WAIT_CLOSE [db]: complete once the server connections of the database(s) are closed. */
    CompletableFuture<String> waitClose(String database);

    /** SET key = value for a pgrelay setting; the value arrives unquoted. */
    CompletableFuture<String> set(String key, String value);

    enum ShutdownMode {
        IMMEDIATE,
        WAIT_FOR_CLIENTS,
        WAIT_FOR_SERVERS
    }

    static CompletableFuture<String> done() {
        return CompletableFuture.completedFuture(null);
    }

    static CompletableFuture<String> failed(String message) {
        return CompletableFuture.completedFuture(message);
    }
}
