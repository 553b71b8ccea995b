package io.pgrelay.auth;

import com.github.benmanes.caffeine.cache.AsyncCache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.function.LongSupplier;

/**
 * Recent answers of secret lookups (auth_query) by database and user, found or not, kept for a
 * fixed time after they arrive. A lookup in flight is shared: a burst of logins of one user waits
 * for one query, whatever the keep time (in-flight entries do not expire, also with 0). A failed
 * lookup is not kept; the next login asks again.
 */
public final class SecretCache {

    /** What a lookup is for: the database it runs in and the user whose secret it reads. */
    public record Key(String database, String user) {}

    /**
     * Bounds what clients can make pgrelay keep: any client may name any user, and unknown users
     * are kept too (so that guessing names costs no more queries than the keep time allows).
     */
    private static final int MAX_ENTRIES = 10_000;

    private final AsyncCache<Key, Optional<Secret>> answers;

    /**
     * @param keepFor how long an answer is kept after it arrived (auth_query_cache_time)
     * @param nanoClock the clock expiry is measured with (System::nanoTime; tests pass their own)
     */
    public SecretCache(Duration keepFor, LongSupplier nanoClock) {
        answers =
                Caffeine.newBuilder()
                        .expireAfterWrite(keepFor)
                        .maximumSize(MAX_ENTRIES)
                        .ticker(nanoClock::getAsLong)
                        // Bookkeeping is a few map operations: done by the thread at hand, not by
                        // the common ForkJoinPool.
                        .executor(Runnable::run)
                        .buildAsync();
    }

    /**
     * The kept or in-flight answer for {@code key}, else the one {@code lookup} will give (called
     * at most once per key at a time). An empty Optional: no such user, or no usable secret.
     */
    public CompletableFuture<Optional<Secret>> get(
            Key key, Function<Key, CompletableFuture<Optional<Secret>>> lookup) {
        return answers.get(key, (k, executor) -> lookup.apply(k));
    }
}
