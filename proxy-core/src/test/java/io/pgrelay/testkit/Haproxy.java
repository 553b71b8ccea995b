package io.pgrelay.testkit;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * HAProxy (Debian's package) as a TCP round-robin in front of servers that say on an HTTP port
 * whether they take new connections ({@code GET /ready} → 200), the way a Swarm VIP or a cloud load
 * balancer stands in front of several pgrelay instances.
 *
 * <p>The generated config ({@code haproxy.cfg} in a temp dir, with HAProxy's output in {@code
 * haproxy.log} next to it): one frontend on a free loopback port, backend {@value #BACKEND} with a
 * health check every 300 ms, down after one failed check and up after two good ones; a connection
 * refused by a server is retried on another server ({@code retries 3}, {@code option redispatch
 * 1}). A stats page on a second port tells which servers HAProxy considers up ({@link
 * #serverStatus}). {@link #close()} stops HAProxy and deletes the directory.
 *
 * <p>The binary: system property {@code pgrelay.testkit.haproxy}, default {@code
 * /usr/sbin/haproxy}.
 */
public final class Haproxy implements AutoCloseable {

    /** The backend's name in the config and on the stats page. */
    public static final String BACKEND = "relays";

    /** A server behind HAProxy: its traffic port and the HTTP port answering {@code /ready}. */
    public record Server(String name, int port, int readyPort) {}

    private final Process process;
    private final Path dir;
    private final int port;
    private final int statsPort;
    private final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    private Haproxy(Process process, Path dir, int port, int statsPort) {
        this.process = process;
        this.dir = dir;
        this.port = port;
        this.statsPort = statsPort;
    }

    public static Path binary() {
        return Path.of(System.getProperty("pgrelay.testkit.haproxy", "/usr/sbin/haproxy"));
    }

    public static boolean installed() {
        return Files.isExecutable(binary());
    }

    /** Starts HAProxy in the foreground and returns once its stats page answers. */
    public static Haproxy start(List<Server> servers) {
        Path dir;
        try {
            dir = Files.createTempDirectory("pgrelay-haproxy-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int port = FreePorts.next();
        int statsPort = FreePorts.next();
        Path cfg = dir.resolve("haproxy.cfg");
        Path log = dir.resolve("haproxy.log");
        Process process;
        try {
            Files.writeString(cfg, config(port, statsPort, servers));
            Proc.of(binary().toString(), "-c", "-f", cfg.toString()).check();
            process =
                    new ProcessBuilder(binary().toString(), "-db", "-f", cfg.toString())
                            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                            .redirectErrorStream(true)
                            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                            .start();
        } catch (IOException e) {
            deleteDir(dir);
            throw new UncheckedIOException(e);
        }
        Haproxy haproxy = new Haproxy(process, dir, port, statsPort);
        try {
            Await.until(
                    "haproxy's stats page on port " + statsPort,
                    Duration.ofSeconds(10),
                    () -> process.isAlive() && !haproxy.serverStatus().isEmpty());
            return haproxy;
        } catch (RuntimeException | Error e) {
            haproxy.close();
            throw e;
        }
    }

    static String config(int port, int statsPort, List<Server> servers) {
        StringBuilder cfg =
                new StringBuilder(
                        """
                        global
                            maxconn 4096

                        defaults
                            mode tcp
                            timeout connect 1s
                            # longer than any pooled connection stays idle in these tests
                            timeout client 10m
                            timeout server 10m
                            timeout check 1s
                            retries 3
                            # every retry goes to another server: a refused connection means that
                            # server is stopping
                            option redispatch 1

                        frontend pg
                            bind 127.0.0.1:%d
                            default_backend %s

                        backend %s
                            balance roundrobin
                            option httpchk GET /ready
                            http-check expect status 200
                            default-server inter 300ms fall 1 rise 2
                        """
                                .formatted(port, BACKEND, BACKEND));
        for (Server s : servers) {
            cfg.append(
                    "    server %s 127.0.0.1:%d check port %d%n"
                            .formatted(s.name(), s.port(), s.readyPort()));
        }
        cfg.append(
                """

                listen stats
                    mode http
                    bind 127.0.0.1:%d
                    timeout client 5s
                    stats enable
                    stats uri /stats
                """
                        .formatted(statsPort));
        return cfg.toString();
    }

    /** The frontend's port: where clients connect. */
    public int port() {
        return port;
    }

    /** Server name → HAProxy's status of it (UP, DOWN, "UP 1/2", ...), from the stats page. */
    public Map<String, String> serverStatus() throws IOException, InterruptedException {
        HttpResponse<String> response =
                http.send(
                        HttpRequest.newBuilder(
                                        URI.create("http://127.0.0.1:" + statsPort + "/stats;csv"))
                                .timeout(Duration.ofSeconds(2))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
        List<String> lines = response.body().lines().toList();
        if (response.statusCode() != 200 || lines.isEmpty()) {
            return Map.of();
        }
        // "# pxname,svname,...,status,...": find the columns by name
        List<String> header = Arrays.asList(lines.get(0).replaceFirst("^# ", "").split(","));
        int proxy = header.indexOf("pxname");
        int name = header.indexOf("svname");
        int status = header.indexOf("status");
        Map<String, String> out = new HashMap<>();
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split(",", -1);
            if (f.length > status
                    && f[proxy].equals(BACKEND)
                    && !f[name].equals("BACKEND")
                    && !f[name].equals("FRONTEND")) {
                out.put(f[name], f[status]);
            }
        }
        return out;
    }

    /** Waits until HAProxy's status of {@code server} is exactly {@code status} (UP, DOWN). */
    public void awaitStatus(String server, String status, Duration timeout) {
        Await.until(
                "haproxy to see " + server + " " + status,
                timeout,
                () -> status.equals(serverStatus().get(server)));
    }

    /** HAProxy's own output so far (warnings, alerts). */
    public String log() {
        try {
            return Files.readString(dir.resolve("haproxy.log"));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                Proc.killTree(process.toHandle());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            Proc.killTree(process.toHandle());
        }
        deleteDir(dir);
    }

    private static void deleteDir(Path dir) {
        try (var files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.deleteIfExists(f);
            }
            Files.deleteIfExists(dir);
        } catch (IOException ignored) {
            // a temp dir
        }
    }
}
