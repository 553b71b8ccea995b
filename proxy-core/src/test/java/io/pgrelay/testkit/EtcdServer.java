package io.pgrelay.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A single-member etcd v3 on loopback for integration tests.
 *
 * <pre>{@code
 * try (EtcdServer etcd = EtcdServer.start(dir)) {
 *     etcd.etcdctl("put", "/k", "v");
 *     etcd.stop();   // outage: data dir kept
 *     etcd.start();  // same cluster back
 * }
 * }</pre>
 *
 * <p>The data lives in {@code <dir>/etcd-data}, output in {@code <dir>/etcd.log} (quoted in
 * failures). {@link #close()} kills the process but leaves {@code dir} to its owner: the caller
 * created it and deletes it (see {@link PatroniCluster}). Runs as the current user; etcd does
 * not mind root.
 */
public final class EtcdServer implements AutoCloseable {

    private static final Duration READY_TIMEOUT = Duration.ofSeconds(20);

    private final Path dir;
    private final int clientPort;
    private final int peerPort;
    private Process process;

    private EtcdServer(Path dir, int clientPort, int peerPort) {
        this.dir = dir;
        this.clientPort = clientPort;
        this.peerPort = peerPort;
    }

    /** Starts etcd with its data under {@code dir} on two free ports; waits until healthy. */
    public static EtcdServer start(Path dir) {
        EtcdServer etcd = new EtcdServer(dir, FreePorts.next(), FreePorts.next());
        try {
            etcd.start();
        } catch (RuntimeException | Error e) {
            etcd.close();
            throw e;
        }
        return etcd;
    }

    /** {@code http://127.0.0.1:<port>} */
    public String endpoint() {
        return "http://127.0.0.1:" + clientPort;
    }

    /** {@code 127.0.0.1:<port>}, the form Patroni's {@code etcd3.hosts} takes. */
    public String hostPort() {
        return "127.0.0.1:" + clientPort;
    }

    public int clientPort() {
        return clientPort;
    }

    /** Starts the process again on the same data dir (no-op if running); waits until healthy. */
    public synchronized void start() {
        if (process != null && process.isAlive()) {
            return;
        }
        String client = endpoint();
        String peer = "http://127.0.0.1:" + peerPort;
        ProcessBuilder pb = new ProcessBuilder("etcd", "--name", "e1",
                "--data-dir", dir.resolve("etcd-data").toString(),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "e1=" + peer)
                .redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("etcd.log").toFile()));
        pb.environment().keySet().removeIf(k -> k.startsWith("ETCD"));
        try {
            Files.createDirectories(dir);
            process = pb.start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start etcd", e);
        }
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (!healthy()) {
            if (!process.isAlive()) {
                throw new IllegalStateException("etcd exited with " + process.exitValue() + "\n" + logTail(30));
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("etcd not healthy after " + READY_TIMEOUT + "\n" + logTail(30));
            }
            sleep(50);
        }
    }

    /** Graceful stop (SIGTERM, SIGKILL after 10 s); the data stays for {@link #start()}. */
    public synchronized void stop() {
        Process p = process;
        process = null;
        if (p == null) {
            return;
        }
        p.destroy();
        try {
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    public synchronized boolean isRunning() {
        return process != null && process.isAlive();
    }

    /** Runs {@code etcdctl} (API v3) against this etcd and returns its stdout; throws on failure. */
    public String etcdctl(String... args) {
        List<String> cmd = new ArrayList<>(List.of("etcdctl", "--endpoints=" + endpoint(), "--command-timeout=5s"));
        cmd.addAll(List.of(args));
        return Proc.of(cmd).unsetEnv("ETCDCTL_ENDPOINTS").env("ETCDCTL_API", "3")
                .timeout(Duration.ofSeconds(20)).check().stdout();
    }

    /** The value of {@code key}, or null when absent. */
    public String get(String key) {
        String out = etcdctl("get", "--print-value-only", key);
        return out.isEmpty() ? null : Proc.Result.stripTrailingNewlines(out);
    }

    /** Kills the process (SIGKILL). Idempotent; the data dir is left to the caller. */
    @Override
    public synchronized void close() {
        Process p = process;
        process = null;
        if (p != null) {
            p.destroyForcibly();
            try {
                p.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    public String logTail(int lines) {
        try {
            return Proc.tail(Files.readString(dir.resolve("etcd.log"), StandardCharsets.UTF_8), lines);
        } catch (IOException e) {
            return "(no etcd.log: " + e.getMessage() + ")";
        }
    }

    private boolean healthy() {
        try {
            HttpURLConnection c = (HttpURLConnection) URI.create(endpoint() + "/health").toURL().openConnection();
            c.setConnectTimeout(500);
            c.setReadTimeout(1000);
            try (InputStream in = c.getInputStream()) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8).contains("\"health\":\"true\"");
            } finally {
                c.disconnect();
            }
        } catch (IOException e) {
            return false;
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
