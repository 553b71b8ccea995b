package io.pgrelay.routing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A single-member etcd on loopback for tests: the routing module's own, and proxy-core's Patroni
 * test kit through this module's test-jar. Data lives in a temp dir that survives {@link #stop()},
 * so {@link #start()} brings the same cluster back — that is how tests simulate an outage. {@link
 * #close()} kills it and deletes the dir; a shutdown hook does the same for instances a failed test
 * left behind. Output goes to {@code etcd.log} in the dir, quoted on failure.
 */
public final class EtcdProcess implements AutoCloseable {

    private static final Duration READY_TIMEOUT = Duration.ofSeconds(20);
    private static final Set<EtcdProcess> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime()
                .addShutdownHook(
                        new Thread(
                                () -> {
                                    for (EtcdProcess p : List.copyOf(LIVE)) {
                                        p.close();
                                    }
                                },
                                "etcd-process-cleanup"));
    }

    private final Path dir;
    private final int clientPort;
    private final int peerPort;
    private Process process;

    private EtcdProcess(Path dir, int clientPort, int peerPort) {
        this.dir = dir;
        this.clientPort = clientPort;
        this.peerPort = peerPort;
    }

    /** Starts a fresh etcd on free loopback ports and waits until it reports healthy. */
    public static EtcdProcess startNew() {
        try {
            return startIn(Files.createTempDirectory("pgrelay-etcd-"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Starts a fresh etcd keeping its data and log in {@code dir} (created; deleted by close). */
    public static EtcdProcess startIn(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int[] ports = freePorts(2);
        EtcdProcess etcd = new EtcdProcess(dir, ports[0], ports[1]);
        LIVE.add(etcd);
        try {
            etcd.start();
        } catch (RuntimeException | Error e) {
            etcd.close();
            throw e;
        }
        return etcd;
    }

    /** {@code 127.0.0.1:<port>}, the form Patroni's {@code etcd3.hosts} takes. */
    public String hostPort() {
        return "127.0.0.1:" + clientPort;
    }

    public String endpoint() {
        return "http://127.0.0.1:" + clientPort;
    }

    public synchronized void start() {
        if (process != null && process.isAlive()) {
            return;
        }
        String client = endpoint();
        String peer = "http://127.0.0.1:" + peerPort;
        ProcessBuilder pb =
                new ProcessBuilder(
                                "etcd",
                                "--name",
                                "e1",
                                "--data-dir",
                                dir.resolve("data").toString(),
                                "--listen-client-urls",
                                client,
                                "--advertise-client-urls",
                                client,
                                "--listen-peer-urls",
                                peer,
                                "--initial-advertise-peer-urls",
                                peer,
                                "--initial-cluster",
                                "e1=" + peer)
                        .redirectErrorStream(true)
                        .redirectOutput(
                                ProcessBuilder.Redirect.appendTo(dir.resolve("etcd.log").toFile()));
        pb.environment().keySet().removeIf(k -> k.startsWith("ETCD"));
        try {
            process = pb.start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start etcd", e);
        }
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (!healthy()) {
            if (!process.isAlive()) {
                throw new IllegalStateException(
                        "etcd exited with " + process.exitValue() + "\n" + logTail());
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException(
                        "etcd not healthy after " + READY_TIMEOUT + "\n" + logTail());
            }
            sleep(50);
        }
    }

    /** Graceful stop (SIGTERM, then SIGKILL after 10 s); the data dir stays. */
    public synchronized void stop() {
        if (process == null) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        process = null;
    }

    /** Runs {@code etcdctl} (API v3) against this etcd; returns stdout, throws on non-zero exit. */
    public String etcdctl(String... args) {
        List<String> cmd =
                new java.util.ArrayList<>(
                        List.of("etcdctl", "--endpoints=" + endpoint(), "--command-timeout=5s"));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().keySet().removeIf(k -> k.startsWith("ETCD"));
        pb.environment().put("ETCDCTL_API", "3");
        try {
            Process p = pb.start();
            p.getOutputStream().close();
            byte[] out;
            try (InputStream in = p.getInputStream()) {
                out = in.readAllBytes();
            }
            if (!p.waitFor(20, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException("etcdctl timed out: " + cmd);
            }
            String text = new String(out, StandardCharsets.UTF_8);
            if (p.exitValue() != 0) {
                throw new IllegalStateException(
                        "etcdctl exit " + p.exitValue() + ": " + cmd + "\n" + text);
            }
            return text;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    @Override
    public synchronized void close() {
        if (process != null) {
            process.destroyForcibly();
            try {
                process.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            process = null;
        }
        LIVE.remove(this);
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // best effort
        }
    }

    /** The value of {@code key}, or null when absent. */
    public String get(String key) {
        String out = etcdctl("get", "--print-value-only", key).strip();
        return out.isEmpty() ? null : out;
    }

    String logTail() {
        return logTail(30);
    }

    public String logTail(int count) {
        try {
            List<String> lines =
                    Files.readAllLines(dir.resolve("etcd.log"), StandardCharsets.UTF_8);
            return String.join(
                    "\n", lines.subList(Math.max(0, lines.size() - count), lines.size()));
        } catch (IOException e) {
            return "(no etcd.log: " + e.getMessage() + ")";
        }
    }

    private boolean healthy() {
        return healthy(endpoint());
    }

    /**
     * True if the etcd member at {@code endpoint} ({@code http://host:port}) says it is healthy.
     */
    public static boolean healthy(String endpoint) {
        try {
            HttpURLConnection c =
                    (HttpURLConnection) URI.create(endpoint + "/health").toURL().openConnection();
            c.setConnectTimeout(500);
            c.setReadTimeout(1000);
            try (InputStream in = c.getInputStream()) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8)
                        .contains("\"health\":\"true\"");
            } finally {
                c.disconnect();
            }
        } catch (IOException e) {
            return false;
        }
    }

    /** Distinct free ports: all probe sockets stay open until every port is chosen. */
    private static int[] freePorts(int count) {
        List<ServerSocket> sockets = new java.util.ArrayList<>();
        try {
            int[] ports = new int[count];
            for (int i = 0; i < count; i++) {
                ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"));
                sockets.add(s);
                ports[i] = s.getLocalPort();
            }
            return ports;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            for (ServerSocket s : sockets) {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // nothing to do
                }
            }
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
