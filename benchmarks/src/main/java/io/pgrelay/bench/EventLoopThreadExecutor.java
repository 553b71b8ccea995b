package io.pgrelay.bench;

import io.netty.util.concurrent.FastThreadLocalThread;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * JMH worker threads that Netty treats like its own event-loop threads ({@link
 * FastThreadLocalThread}s that clean up their fast thread-locals).
 *
 * <p>Netty 4.2's allocators give per-thread caches only to such threads by default ({@code
 * PooledByteBufAllocator}: {@code io.netty.allocator.useCacheForAllThreads=false}; {@code
 * AdaptiveByteBufAllocator}: {@code
 * io.netty.allocator.useCachedMagazinesForNonEventLoopThreads=false}). On JMH's plain worker
 * threads every allocation would take the shared, synchronized path, which pgrelay's event loops
 * never do. Selected with {@code -Djmh.executor=CUSTOM
 * -Djmh.executor.class=io.pgrelay.bench.EventLoopThreadExecutor} (JMH calls the {@code (int,
 * String)} constructor).
 */
public final class EventLoopThreadExecutor extends ThreadPoolExecutor {

    public EventLoopThreadExecutor(int maxThreads, String prefix) {
        super(
                maxThreads,
                maxThreads,
                0,
                TimeUnit.MILLISECONDS,
                new LinkedBlockingQueue<>(),
                threads(prefix));
    }

    private static ThreadFactory threads(String prefix) {
        AtomicInteger count = new AtomicInteger();
        return task -> {
            Thread thread =
                    new FastThreadLocalThread(
                            task, prefix + "-jmh-worker-" + count.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        };
    }
}
