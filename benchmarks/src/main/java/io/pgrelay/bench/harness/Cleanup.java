package io.pgrelay.bench.harness;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Runs once at exit, also on Ctrl-C (a shutdown hook): stops every process the run started, keeps
 * the logs next to the raw results and removes the work directory.
 */
final class Cleanup {
    private final Context ctx;
    private final Targets targets;
    private final PostgresServer postgres;
    private final IdleTest idle;
    private boolean done;

    Cleanup(Context ctx, Targets targets, PostgresServer postgres, IdleTest idle) {
        this.ctx = ctx;
        this.targets = targets;
        this.postgres = postgres;
        this.idle = idle;
    }

    synchronized void run() {
        if (done) {
            return;
        }
        done = true;
        Proc.stopping();
        try {
            idle.stopClient();
        } catch (RuntimeException e) {
            // keep going: the other processes must stop too
        }
        targets.stopAll();
        postgres.stop();
        Path work = ctx.work;
        for (String log :
                List.of(
                        "pgbouncer.log",
                        "pgbouncer125.log",
                        "odyssey.log",
                        "pgrelay.log",
                        "baseline.log",
                        "haproxy.out",
                        "postgres.log")) {
            copy(work.resolve(log));
        }
        try (Stream<Path> files = Files.list(work)) { // pgrelay / baseline logs of the TLS modes
            files.filter(p -> p.getFileName().toString().matches("tls-.*\\.log"))
                    .sorted()
                    .forEach(this::copy);
        } catch (IOException e) {
            // nothing to keep
        }
        try (Stream<Path> all = Files.walk(work)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            Log.log("could not remove " + work + ": " + e.getMessage());
        }
    }

    private void copy(Path file) {
        if (!Files.isRegularFile(file)) {
            return;
        }
        try {
            Files.copy(
                    file,
                    ctx.results.resolve(file.getFileName()),
                    StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            // a missing log is not worth failing the exit for
        }
    }
}
