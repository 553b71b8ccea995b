package io.pgrelay.proxy;

import io.pgrelay.auth.Secret;
import io.pgrelay.auth.SecretCache;
import io.pgrelay.config.AuthQuerySettings;
import io.pgrelay.protocol.LogSafe;
import io.pgrelay.routing.Role;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * PgBouncer's auth_query: the secrets of users missing from auth_file, read from PostgreSQL ({@link
 * SecretLookup}), kept for auth_query_cache_time ({@link SecretCache}) and handed to {@link
 * Credentials} for pgrelay's own logins as those users. Every lookup sent to a server is counted
 * and every failed one logged (WARN, with the cause); a login served from the cache is neither.
 */
final class AuthQuery {

    private static final Logger log = LoggerFactory.getLogger(AuthQuery.class);

    /** What a lookup sent to a server came to (the pgrelay_auth_queries_total label). */
    enum Result {
        FOUND("found"),
        NOT_FOUND("not_found"),
        FAILED("failed");

        final String label;

        Result(String label) {
            this.label = label;
        }
    }

    /** The settings and the answers got with them: replaced together when the settings change. */
    private record Generation(AuthQuerySettings settings, SecretCache cache) {}

    private final SessionServices relay;
    private volatile Generation current;

    AuthQuery(SessionServices relay, AuthQuerySettings settings) {
        this.relay = relay;
        this.current =
                new Generation(settings, new SecretCache(settings.cacheTime(), System::nanoTime));
    }

    /** Whether users missing from auth_file are looked up (auth_user is set). */
    boolean enabled() {
        return current.settings().enabled();
    }

    /**
     * The secret of {@code user}, a client of {@code clientDatabase} on the port for {@code role}:
     * empty when there is no such role or it has no password; fails with {@link AuthQueryException}
     * (possibly wrapped in a CompletionException) when it could not be read. Completes on any
     * thread.
     */
    CompletableFuture<Optional<Secret>> secret(String clientDatabase, String user, Role role) {
        Generation g = current;
        SecretCache.Key key = new SecretCache.Key(g.settings().database(clientDatabase), user);
        return g.cache().get(key, k -> query(g, k, role));
    }

    private CompletableFuture<Optional<Secret>> query(
            Generation g, SecretCache.Key key, Role role) {
        return SecretLookup.run(relay, g.settings(), key, role)
                .whenComplete(
                        (secret, error) -> {
                            if (error != null) {
                                relay.metrics().authQuery(Result.FAILED);
                                log.warn(
                                        "auth_query for user {}: {}",
                                        LogSafe.quote(key.user()),
                                        cause(error).getMessage());
                                return;
                            }
                            relay.metrics()
                                    .authQuery(
                                            secret.isPresent() ? Result.FOUND : Result.NOT_FOUND);
                            if (current == g) {
                                relay.credentials().queried(key.user(), secret.orElse(null));
                            }
                        });
    }

    /**
     * A RELOAD or SET: changed settings start afresh (answers got with the old ones are dropped,
     * lookups in flight finish for the clients waiting on them). The secrets found so far stay for
     * pgrelay's own logins, until each user's next lookup, unless auth_query is off now: then only
     * auth_file counts, as a user removed from it counts at once.
     */
    void reconfigure(AuthQuerySettings next) {
        if (next.equals(current.settings())) {
            return;
        }
        current = new Generation(next, new SecretCache(next.cacheTime(), System::nanoTime));
        if (!next.enabled()) {
            relay.credentials().forgetQueried();
        }
    }

    /** The exception a lookup failed with, unwrapped from CompletionException. */
    static Throwable cause(Throwable error) {
        return error instanceof CompletionException && error.getCause() != null
                ? error.getCause()
                : error;
    }
}
