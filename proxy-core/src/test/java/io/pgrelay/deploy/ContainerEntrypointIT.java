package io.pgrelay.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.FreePorts;
import io.pgrelay.testkit.PgServer;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Runs the image's entrypoint as deploy/Dockerfile states it, without a container engine (there is
 * none here): the files are laid out under a temporary root as its COPY lines put them, the
 * ENTRYPOINT and CMD run from its WORKDIR with its ENV, as its USER when the test runs as root.
 * Image paths are taken under that root. Only pgrelay's own settings are moved by PGRELAY_
 * variables, as a deployment would: static routing to a throw-away PostgreSQL, free ports on
 * loopback, the auth file. Then: pgjdbc through both ports, /ready and the image's HEALTHCHECK, the
 * JVM's command line, and a SIGTERM (Process.destroy) that must end in exit code 0 within
 * runtime.shutdown_timeout, logged as a graceful stop.
 *
 * <p>A failsafe test (*IT): it needs the shaded jar, which exists after {@code package}.
 */
class ContainerEntrypointIT {

    private static final Path ROOT = DeployFilesTest.repositoryRoot();

    private final Dockerfile dockerfile = Dockerfile.read(ROOT.resolve("deploy/Dockerfile"));
    private final List<Runnable> cleanup = new ArrayList<>();

    @AfterEach
    void cleanUp() {
        for (int i = cleanup.size() - 1; i >= 0; i--) {
            cleanup.get(i).run();
        }
    }

    @Test
    void entrypointServesAndStopsGracefullyOnSigterm() throws Exception {
        PgServer pg = PgServer.startPrimary();
        cleanup.add(pg::close);
        Path image = layOutImage();
        int[] ports = FreePorts.next(3);

        Map<String, String> env = imageEnvironment(image);
        // What a deployment would set (deploy/pgrelay.conf reads etcd and /run/secrets).
        Path userlist = under(image, "/run/secrets/userlist.txt");
        Files.createDirectories(userlist.getParent());
        Files.writeString(
                userlist, "\"" + PgServer.APP_USER + "\" \"" + PgServer.APP_PASSWORD + "\"\n");
        env.put("PGRELAY_AUTH_AUTH_FILE", userlist.toString());
        env.put("PGRELAY_ROUTING_SOURCE", "static");
        env.put("PGRELAY_BACKENDS_PRIMARY", pg.hostPort());
        env.put("PGRELAY_LISTEN_HOST", "127.0.0.1");
        env.put("PGRELAY_LISTEN_WRITE_PORT", String.valueOf(ports[0]));
        env.put("PGRELAY_LISTEN_READ_PORT", String.valueOf(ports[1]));
        env.put("PGRELAY_ADMIN_HTTP_HOST", "127.0.0.1");
        env.put("PGRELAY_ADMIN_HTTP_PORT", String.valueOf(ports[2]));
        // bin/pgrelay's knob for extra JVM options: Netty's leak detector as in the tests.
        env.put("JAVA_OPTS", "-Dio.netty.leakDetection.level=paranoid");

        Path log = image.resolve("pgrelay.log");
        Process relay = start(image, env, log);

        HttpClient http = HttpClient.newHttpClient();
        URI ready = URI.create("http://127.0.0.1:" + ports[2] + "/ready");
        Await.until(
                "/ready 200 (log: " + log + ")",
                Duration.ofSeconds(60),
                () -> {
                    assertTrue(relay.isAlive(), () -> "pgrelay exited:\n" + read(log));
                    return http.send(
                                    HttpRequest.newBuilder(ready).build(),
                                    HttpResponse.BodyHandlers.discarding())
                            .statusCode();
                },
                status -> status == 200);
        assertEquals(0, healthcheck(image, env), "the image's HEALTHCHECK while ready");

        // bin/pgrelay exec'd java (so SIGTERM reaches the JVM), with the container JVM options.
        List<String> cmdline = commandLine(relay.pid());
        assertTrue(cmdline.get(0).endsWith("/java"), cmdline.toString());
        assertTrue(cmdline.contains("-XX:MaxRAMPercentage=40"), cmdline.toString());
        assertTrue(cmdline.stream().noneMatch(a -> a.startsWith("-Xmx")), cmdline.toString());
        if (!asImageUser().isEmpty()) {
            String uid = dockerfile.user().split(":")[0];
            assertTrue(
                    Files.readAllLines(Path.of("/proc/" + relay.pid() + "/status")).stream()
                            .anyMatch(l -> l.matches("Uid:\\s+" + uid + "\\s.*")),
                    "runs as USER " + uid);
        }

        String url = "jdbc:postgresql://127.0.0.1:%d/" + PgServer.APP_DB + "?sslmode=disable";
        for (int port : new int[] {ports[0], ports[1]}) {
            try (Connection c = connect(url.formatted(port))) {
                assertEquals(pg.port(), serverPort(c), "through port " + port);
            }
        }
        // A client connected, idle (no transaction) when SIGTERM comes.
        Connection idle = connect(url.formatted(ports[0]));
        cleanup.add(() -> closeQuietly(idle));
        assertEquals(pg.port(), serverPort(idle));

        Duration shutdownTimeout = containerConfig().shutdownTimeout();
        long t0 = System.nanoTime();
        relay.destroy(); // SIGTERM
        assertTrue(
                relay.waitFor(shutdownTimeout.toMillis(), TimeUnit.MILLISECONDS),
                () ->
                        "still running after shutdown_timeout "
                                + shutdownTimeout
                                + ":\n"
                                + read(log));
        Duration took = Duration.ofNanos(System.nanoTime() - t0);
        String output = read(log);
        assertEquals(0, relay.exitValue(), output);
        assertTrue(output.contains("shutting down"), output);
        assertTrue(output.contains("pgrelay stopped"), output);
        assertFalse(
                output.contains("names no pgrelay setting"), "every PGRELAY_ is known:\n" + output);
        assertFalse(output.contains("LEAK"), output);
        assertThrows(SQLException.class, () -> serverPort(idle), "idle client closed");
        assertNotEquals(0, healthcheck(image, env), "HEALTHCHECK once stopped");
        System.out.println(
                "graceful stop took " + took.toMillis() + " ms; pgrelay's log:\n" + output);
    }

    /** The settings the image starts with: deploy/pgrelay.conf over the bundled defaults. */
    private static ProxyConfig containerConfig() {
        return ProxyConfig.from(
                ConfigFactory.parseFile(ROOT.resolve("deploy/pgrelay.conf").toFile())
                        .withFallback(ProxyConfig.defaults())
                        .resolve()
                        .getConfig("pgrelay"));
    }

    /**
     * The image's files under a temporary root, copied as the COPY lines say (mode bits kept, owned
     * by root when the test runs as root, so the image's USER can read but not write).
     */
    private Path layOutImage() throws IOException {
        Path image =
                Files.createTempDirectory(
                        Path.of("/tmp"),
                        "pgrelay-image-",
                        PosixFilePermissions.asFileAttribute(
                                PosixFilePermissions.fromString("rwxr-xr-x")));
        cleanup.add(() -> deleteTree(image));
        for (Dockerfile.Copy copy : dockerfile.copies()) {
            for (String source : copy.sources()) {
                Path from = ROOT.resolve(source);
                assertTrue(
                        Files.isRegularFile(from),
                        from + " missing (the jar is built by mvn package, before this test)");
                Path to = under(image, copy.target(source));
                Files.createDirectories(to.getParent());
                Files.copy(from, to, StandardCopyOption.COPY_ATTRIBUTES);
            }
        }
        Files.createDirectories(under(image, dockerfile.workdir()));
        try (Stream<Path> all = Files.walk(image)) {
            for (Path p : all.toList()) {
                if (Files.isDirectory(p)) {
                    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
                }
            }
        }
        return image;
    }

    /** An absolute path of the image, under the laid-out root. */
    private static Path under(Path image, String imagePath) {
        assertTrue(imagePath.startsWith("/"), imagePath);
        return image.resolve(imagePath.substring(1));
    }

    /**
     * What the container's processes see: PATH and JAVA_HOME as the base image provides them (here:
     * this JVM's), the Dockerfile's ENV with image paths under the root. Nothing else of this
     * test's environment, so no stray PGRELAY_ or CONFIG_FORCE_ variable takes part.
     */
    private Map<String, String> imageEnvironment(Path image) {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("PATH", System.getenv().getOrDefault("PATH", "/usr/bin:/bin"));
        env.put("JAVA_HOME", System.getProperty("java.home"));
        dockerfile
                .env()
                .forEach((k, v) -> env.put(k, v.startsWith("/") ? under(image, v).toString() : v));
        return env;
    }

    /** ENTRYPOINT + CMD from WORKDIR, as USER where this test can switch to it. */
    private Process start(Path image, Map<String, String> env, Path log) throws IOException {
        List<String> command = new ArrayList<>(asImageUser());
        List<String> entrypoint = dockerfile.entrypoint();
        command.add(under(image, entrypoint.get(0)).toString());
        command.addAll(entrypoint.subList(1, entrypoint.size()));
        command.addAll(dockerfile.cmd());
        return run(command, image, env)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
    }

    /** The HEALTHCHECK command's exit code. */
    private int healthcheck(Path image, Map<String, String> env) throws Exception {
        List<String> command = new ArrayList<>(asImageUser());
        List<String> hc = dockerfile.healthcheck().command();
        command.add(under(image, hc.get(0)).toString());
        command.addAll(hc.subList(1, hc.size()));
        Process p = run(command, image, env).redirectErrorStream(true).start();
        assertTrue(p.waitFor(10, TimeUnit.SECONDS), "HEALTHCHECK hangs");
        return p.exitValue();
    }

    private ProcessBuilder run(List<String> command, Path image, Map<String, String> env) {
        ProcessBuilder pb =
                new ProcessBuilder(command)
                        .directory(under(image, dockerfile.workdir()).toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().clear();
        pb.environment().putAll(env);
        return pb;
    }

    /**
     * setpriv to the Dockerfile's USER when running as root: it execs, so the process keeps its pid
     * and Process.destroy still signals pgrelay's JVM.
     */
    private List<String> asImageUser() {
        boolean root = "root".equals(System.getProperty("user.name"));
        if (!root || !Files.isExecutable(Path.of("/usr/bin/setpriv"))) {
            return List.of();
        }
        String[] user = dockerfile.user().split(":");
        String group = user.length > 1 ? user[1] : user[0];
        return List.of(
                "/usr/bin/setpriv",
                "--reuid=" + user[0],
                "--regid=" + group,
                "--clear-groups",
                "--");
    }

    private static List<String> commandLine(long pid) throws IOException {
        byte[] raw = Files.readAllBytes(Path.of("/proc/" + pid + "/cmdline"));
        return Arrays.asList(new String(raw, StandardCharsets.UTF_8).split("\0"));
    }

    private static Connection connect(String url) throws SQLException {
        return DriverManager.getConnection(url, PgServer.APP_USER, PgServer.APP_PASSWORD);
    }

    /** Which PostgreSQL answered: the port it listens on. */
    private static int serverPort(Connection c) throws SQLException {
        try (Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT current_setting('port')::int")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException ignored) {
            // already closed by the server side
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> all = Files.walk(dir)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a temp directory left behind
        }
    }
}
