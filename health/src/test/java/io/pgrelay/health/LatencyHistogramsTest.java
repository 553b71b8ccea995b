package io.pgrelay.health;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.netty.util.concurrent.FastThreadLocalThread;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class LatencyHistogramsTest {

    private static final Pattern BUCKET =
            Pattern.compile("^(\\w+)_bucket\\{(.*)le=\"([^\"]+)\"\\} (\\S+)$", Pattern.MULTILINE);

    /** The same values into a Micrometer timer and into a family: the same /metrics lines. */
    @Test
    void publishesWhatAMicrometerTimerWouldForTheSameValues() {
        long[] values = {
            42_000, 100_000, 100_001, 3_000_000, 3_000_000, 2_000_000_000L, 70_000_000_000L
        };
        String expected;
        try (Metrics reference = Metrics.create(Tags.of("instance", "a"))) {
            Timer timer =
                    Metrics.timer(
                            reference.registry(),
                            "pgrelay.transactions",
                            "help",
                            Tags.of("role", "primary"));
            for (long v : values) {
                timer.record(v, TimeUnit.NANOSECONDS);
            }
            expected = reference.registry().scrape();
        }
        String actual;
        try (Metrics metrics = Metrics.create(Tags.of("instance", "a"))) {
            LatencyHistograms.Histogram h =
                    metrics.latencyHistograms("pgrelay.transactions", "help")
                            .histogram(Tags.of("role", "primary"));
            long now = System.nanoTime();
            for (long v : values) {
                h.record(v, now);
            }
            actual = metrics.registry().scrape();
        }
        assertEquals(buckets(expected), buckets(actual));
        assertTrue(
                buckets(actual).size() > 20, "a percentile histogram: " + buckets(actual).size());
        for (String series :
                List.of(
                        "pgrelay_transactions_seconds_count{instance=\"a\",role=\"primary\"} 7",
                        "pgrelay_transactions_seconds_max{instance=\"a\",role=\"primary\"} 70.0",
                        "# TYPE pgrelay_transactions_seconds histogram",
                        "# TYPE pgrelay_transactions_seconds_max gauge")) {
            assertTrue(expected.contains(series), "Micrometer: " + series + "\n" + expected);
            assertTrue(actual.contains(series), "ours: " + series + "\n" + actual);
        }
        assertEquals(sum(expected), sum(actual), 1e-9);
    }

    /** Several recording threads, each with counters of its own: nothing lost in the sum. */
    @Test
    void countsEveryValueFromEveryThread() throws InterruptedException {
        try (Metrics metrics = Metrics.create()) {
            LatencyHistograms family = metrics.latencyHistograms("pgrelay.queries", "help");
            LatencyHistograms.Histogram h = family.histogram(Tags.of("role", "replica"));
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                boolean netty = t % 2 == 0; // event loops and plain threads alike
                Runnable work =
                        () -> {
                            for (int i = 0; i < 100_000; i++) {
                                h.record(250_000, System.nanoTime());
                            }
                        };
                Thread thread = netty ? new FastThreadLocalThread(work) : new Thread(work);
                threads.add(thread);
                thread.start();
            }
            // scrapes while they record: counts only grow, and +Inf always equals _count
            long last = 0;
            for (int i = 0; i < 20; i++) {
                String text = metrics.registry().scrape();
                long count = count(text, "pgrelay_queries_seconds_count{role=\"replica\"}");
                assertTrue(count >= last, "count went back: " + count + " < " + last);
                assertEquals(
                        count,
                        count(
                                text,
                                "pgrelay_queries_seconds_bucket{role=\"replica\",le=\"+Inf\"}"));
                last = count;
            }
            for (Thread t : threads) {
                t.join();
            }
            String text = metrics.registry().scrape();
            assertEquals(400_000, count(text, "pgrelay_queries_seconds_count{role=\"replica\"}"));
            assertEquals(
                    400_000L * 250_000 / 1e9,
                    Double.parseDouble(
                            value(text, "pgrelay_queries_seconds_sum{role=\"replica\"}")),
                    1e-6);
            assertEquals("2.5E-4", value(text, "pgrelay_queries_seconds_max{role=\"replica\"}"));
        }
    }

    /** The maximum covers the last two minutes (three 40 s slots), as Micrometer's does. */
    @Test
    void maximumForgetsValuesOlderThanItsWindow() {
        LatencyHistograms.Recorder r = new LatencyHistograms.Recorder(3);
        r.record(0, 900, 10);
        r.record(0, 500, 11);
        assertEquals(900, r.max(11));
        assertEquals(900, r.max(12));
        assertEquals(500, r.max(13), "epoch 10 is out of the window");
        r.record(0, 100, 14); // reuses epoch 11's slot
        assertEquals(100, r.max(14));
        assertEquals(0, r.max(20));
    }

    private static TreeMap<Double, String> buckets(String text) {
        TreeMap<Double, String> out = new TreeMap<>();
        Matcher m = BUCKET.matcher(text);
        while (m.find()) {
            if (m.group(1).equals("pgrelay_transactions_seconds")) {
                String le = m.group(3);
                out.put(
                        le.equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(le),
                        m.group(4));
            }
        }
        return out;
    }

    private static double sum(String text) {
        return Double.parseDouble(
                value(text, "pgrelay_transactions_seconds_sum{instance=\"a\",role=\"primary\"}"));
    }

    private static long count(String text, String series) {
        return (long) Double.parseDouble(value(text, series));
    }

    private static String value(String text, String series) {
        for (String line : text.split("\n")) {
            if (line.startsWith(series + " ")) {
                return line.substring(series.length() + 1).trim();
            }
        }
        throw new AssertionError("no " + series + " in\n" + text);
    }
}
