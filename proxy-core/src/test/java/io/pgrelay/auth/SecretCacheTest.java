package io.pgrelay.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Lookups shared while in flight, kept for the keep time after they answer, failures not kept. */
class SecretCacheTest {

    private final AtomicLong now = new AtomicLong();
    private final List<CompletableFuture<Optional<Secret>>> started = new ArrayList<>();
    private static final SecretCache.Key BOB = new SecretCache.Key("appdb", "bob");

    private CompletableFuture<Optional<Secret>> get(SecretCache cache, SecretCache.Key key) {
        return cache.get(
                key,
                k -> {
                    CompletableFuture<Optional<Secret>> f = new CompletableFuture<>();
                    started.add(f);
                    return f;
                });
    }

    @Test
    void concurrentLookupsOfOneUserShareOneQuery() {
        SecretCache cache = new SecretCache(Duration.ofSeconds(10), now::get);
        CompletableFuture<Optional<Secret>> first = get(cache, BOB);
        CompletableFuture<Optional<Secret>> second = get(cache, BOB);
        assertEquals(1, started.size());
        assertSame(first, second);
        get(cache, new SecretCache.Key("appdb", "alice"));
        get(cache, new SecretCache.Key("otherdb", "bob"));
        assertEquals(3, started.size(), "another user or database is another lookup");
        started.get(0).complete(Optional.of(Secret.parse("pw")));
        assertEquals(Optional.of(Secret.parse("pw")), get(cache, BOB).join());
        assertEquals(3, started.size());
    }

    @Test
    void answersFoundOrNotAreKeptForTheKeepTime() {
        SecretCache cache = new SecretCache(Duration.ofSeconds(10), now::get);
        get(cache, BOB);
        started.get(0).complete(Optional.empty());
        now.addAndGet(Duration.ofSeconds(9).toNanos());
        assertEquals(Optional.empty(), get(cache, BOB).join());
        assertEquals(1, started.size());
        now.addAndGet(Duration.ofSeconds(2).toNanos());
        assertTrue(!get(cache, BOB).isDone(), "expired: asked again");
        assertEquals(2, started.size());
    }

    @Test
    void keepTimeZeroStillSharesALookupInFlight() {
        SecretCache cache = new SecretCache(Duration.ZERO, now::get);
        CompletableFuture<Optional<Secret>> first = get(cache, BOB);
        now.addAndGet(Duration.ofSeconds(5).toNanos());
        assertSame(first, get(cache, BOB), "in flight: shared however long it takes");
        started.get(0).complete(Optional.empty());
        get(cache, BOB);
        assertEquals(2, started.size(), "answered: not kept");
    }

    @Test
    void failuresAreNotKept() {
        SecretCache cache = new SecretCache(Duration.ofSeconds(10), now::get);
        CompletableFuture<Optional<Secret>> first = get(cache, BOB);
        started.get(0).completeExceptionally(new IllegalStateException("server down"));
        assertTrue(first.isCompletedExceptionally());
        CompletableFuture<Optional<Secret>> again = get(cache, BOB);
        assertEquals(2, started.size());
        assertTrue(!again.isDone());
    }
}
