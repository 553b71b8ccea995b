package io.pgrelay.bench.harness;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * RSS per idle authenticated client, one proxy at a time while the others idle: what holding
 * thousands of mostly idle application connections costs each proxy.
 */
final class IdleTest {
    /** The readings of one proxy; heap values only for pgrelay and baseline. */
    record Reading(
            String target,
            int loggedIn,
            long seconds,
            long before,
            long with,
            long closed,
            String heapWith,
            String heapClosed) {}

    final List<Reading> done = new ArrayList<>();
    final Map<String, String> notes = new HashMap<>();
    private final Context ctx;
    private final Targets targets;
    private final ProcMemory memory;
    private final Path source;
    private Process client;

    IdleTest(Context ctx, Targets targets) {
        this.ctx = ctx;
        this.targets = targets;
        this.memory = new ProcMemory(ctx.proc, ctx.settings.java);
        this.source =
                ctx.repoRoot.resolve("benchmarks/src/main/java/io/pgrelay/bench/IdleClients.java");
    }

    /** With --idle-clients: each proxy in turn, those of the last TLS mode (only off allows it). */
    void run(List<String> summaryNotes) {
        Settings s = ctx.settings;
        if (s.idleClients <= 0) {
            return;
        }
        if (!Files.isRegularFile(source)) {
            summaryNotes.add("idle test not run: " + source + " missing");
            return;
        }
        if (!Proc.onPath(s.java)) {
            summaryNotes.add("idle test not run: java ('" + s.java + "') not found");
            return;
        }
        List<String> order = new ArrayList<>(List.of("pgrelay"));
        if (s.hasTarget("baseline")) {
            order.add("baseline");
        }
        order.add("pgbouncer");
        for (String t : List.of("pgbouncer125", "odyssey")) {
            if (s.hasTarget(t)) {
                order.add(t);
            }
        }
        for (String t : order) {
            Integer port = ctx.port.get(t);
            if (port == null) {
                String why = ctx.skipReason.get(t);
                notes.put(t, "not running" + (why == null || why.isEmpty() ? "" : ": " + why));
                continue;
            }
            Long pid = targets.pid(t);
            measure(t, pid == null ? 0 : pid, port);
        }
    }

    private void measure(String target, long pid, int port) {
        Settings s = ctx.settings;
        int n = s.idleClients;
        Path out = ctx.results.resolve("idle-" + target + ".txt");
        Log.log("idle: " + target + " (pid " + pid + ", port " + port + "): RSS before");
        long before = ProcMemory.stableRss(pid);
        Log.log(
                "idle: "
                        + target
                        + ": opening "
                        + n
                        + " connections ("
                        + s.idleThreads
                        + " login threads, RSS before "
                        + before / 1024
                        + " MB)");
        long t0 = System.nanoTime();
        List<String> cmd =
                List.of(
                        s.java,
                        source.toString(),
                        Settings.HOST,
                        Integer.toString(port),
                        Settings.BENCH_USER,
                        Settings.BENCH_PASSWORD,
                        Settings.BENCH_DB,
                        Integer.toString(n),
                        Integer.toString(s.idleThreads));
        try {
            // The client holds its connections until its stdin closes: the pipe stays open until
            // then.
            client =
                    ctx.proc
                            .builder(cmd, Map.of())
                            .redirectErrorStream(true)
                            .redirectOutput(out.toFile())
                            .start();
        } catch (IOException e) {
            notes.put(target, "idle client did not start: " + e.getMessage());
            return;
        }
        long deadline = System.nanoTime() + (120L + n / 20) * 1_000_000_000L; // ~50 SCRAM logins/s
        while (readyCount(out) == null) {
            if (!client.isAlive() || System.nanoTime() > deadline) {
                notes.put(
                        target,
                        "idle client did not finish logging in: " + Text.tailSpaced(out, 3));
                Log.log("idle: " + target + ": " + notes.get(target));
                stopClient();
                return;
            }
            Proc.sleep(1000);
        }
        long seconds = (System.nanoTime() - t0) / 1_000_000_000L;
        int ok = readyCount(out);
        for (String line : Text.lines(out)) {
            if (line.startsWith("failed ")) {
                notes.put(target, line);
                Log.log("idle: " + target + ": " + line);
                break;
            }
        }
        long wait = System.nanoTime() + 30_000_000_000L;
        while (ctx.ports.established(port) < ok && System.nanoTime() < wait) {
            Proc.sleep(1000);
        }
        Log.log(
                "idle: "
                        + target
                        + ": "
                        + ok
                        + " logged in ("
                        + ctx.ports.established(port)
                        + " established on the proxy's port) in "
                        + seconds
                        + "s; waiting for a stable RSS");
        long with = ProcMemory.stableRss(pid);
        boolean jvm = target.equals("pgrelay") || target.equals("baseline");
        String heapWith = jvm ? memory.heapLiveKb(pid) : null;
        stopClient();
        wait = System.nanoTime() + 60_000_000_000L;
        while (ctx.ports.established(port) > 5 && System.nanoTime() < wait) {
            Proc.sleep(1000);
        }
        long closed = ProcMemory.stableRss(pid);
        String heapClosed = jvm ? memory.heapLiveKb(pid) : null;
        done.add(new Reading(target, ok, seconds, before, with, closed, heapWith, heapClosed));
        Log.log(
                "idle: "
                        + target
                        + ": RSS "
                        + before / 1024
                        + " MB -> "
                        + with / 1024
                        + " MB with "
                        + ok
                        + " idle -> "
                        + closed / 1024
                        + " MB after closing; "
                        + (ok > 0 ? NumFmt.fixed((double) (with - before) / ok, 2) : "-")
                        + " kB per connection");
    }

    private static Integer readyCount(Path out) {
        for (String line : Text.lines(out)) {
            if (line.startsWith("ready ")) {
                String[] f = line.trim().split("\\s+");
                return f.length > 1 && f[1].matches("[0-9]+") ? Integer.valueOf(f[1]) : 0;
            }
        }
        return null;
    }

    /** Closes the idle client's stdin (it then closes its connections), or kills it after 30 s. */
    void stopClient() {
        if (client == null) {
            return;
        }
        try {
            client.getOutputStream().close();
        } catch (IOException e) {
            // already gone
        }
        for (int i = 0; i < 300 && client.isAlive(); i++) {
            Proc.sleep(100);
        }
        client.destroyForcibly();
        try {
            client.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        client = null;
    }
}
