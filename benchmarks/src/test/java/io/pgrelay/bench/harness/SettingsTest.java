package io.pgrelay.bench.harness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SettingsTest {
    private static final Map<String, String> PEERS =
            Map.of("PGBOUNCER125", "/opt/pgb125/pgbouncer", "ODYSSEY", "/opt/ody/odyssey");

    private static Settings parse(Map<String, String> env, Set<String> missing, String... args) {
        Map<String, String> all = new HashMap<>(PEERS);
        all.putAll(env);
        return Settings.parse(
                List.of(args),
                new Settings.Machine(
                        Path.of("/repo"), Path.of("/cwd"), 2, bin -> !missing.contains(bin), all));
    }

    private static Settings parse(String... args) {
        return parse(Map.of(), Set.of(), args);
    }

    @Test
    void defaultsAreTheScriptsDefaults() {
        Settings s = parse();
        assertEquals(10, s.duration);
        assertEquals(3, s.runs);
        assertEquals(15, s.warmup);
        assertEquals(10, s.scale);
        assertEquals(20, s.poolSize);
        assertEquals(0, s.idleClients);
        assertEquals(4, s.idleThreads);
        assertEquals(2000, s.maxClientConn);
        assertNull(s.connectSlack);
        assertEquals(1, s.odysseyWorkers, "half of 2 cores");
        assertEquals("disable", s.pgsslmode);
        assertEquals("/repo/proxy-core/target/pgrelay.jar", s.pgrelayJar);
        assertEquals("/repo/conf/jvm.options", s.jvmOptionsFile);
        assertEquals(
                List.of("direct", "pgbouncer", "pgbouncer125", "odyssey", "pgrelay", "haproxy"),
                s.targets);
        assertEquals(List.of("simple", "extended", "prepared"), s.protocols);
        assertEquals(List.of("off"), s.tlsModes);
        assertFalse(s.tlsUsed);
        assertEquals(15, s.points.size());
        assertEquals(new Settings.Point("simple", 1), s.points.get(0));
        assertEquals(new Settings.Point("prepared", 1000), s.points.get(14));
        assertTrue(s.notes.isEmpty());
    }

    @Test
    void optionsInBothSpellingsAndEnvironment() {
        Settings s =
                parse(
                        Map.of(
                                "DURATION",
                                "2",
                                "RUNS",
                                "5",
                                "CONNECT_SLACK",
                                "0",
                                "BASELINE_JAR",
                                "b.jar"),
                        Set.of(),
                        "--targets=pgbouncer,pgrelay",
                        "--clients",
                        "1,16",
                        "--protocols=simple",
                        "--prepared",
                        "--runs",
                        "2",
                        "--connect-clients",
                        "4",
                        "--tls=off,client");
        assertEquals(
                List.of("pgbouncer", "pgrelay"), s.targets, "given targets: no baseline added");
        assertEquals(List.of("simple", "prepared"), s.protocols);
        assertEquals(2, s.runs, "--runs wins over RUNS");
        assertEquals(2, s.duration);
        assertEquals(0, s.connectSlack);
        assertEquals("/cwd/b.jar", s.baselineJar, "relative jars are taken from the cwd");
        assertTrue(s.tlsUsed);
        assertEquals(
                List.of(
                        new Settings.Point("simple", 1),
                        new Settings.Point("simple", 16),
                        new Settings.Point("prepared", 1),
                        new Settings.Point("prepared", 16),
                        new Settings.Point("connect", 4)),
                s.points);
        assertEquals(List.of("simple", "prepared", "connect"), s.pointProtocols);
    }

    @Test
    void aBaselineJarAddsBaselineAfterPgrelayToTheDefaultList() {
        Settings s = parse("--baseline-jar", "/tmp/b.jar");
        assertEquals(
                List.of(
                        "direct",
                        "pgbouncer",
                        "pgbouncer125",
                        "odyssey",
                        "pgrelay",
                        "baseline",
                        "haproxy"),
                s.targets);
    }

    @Test
    void missingOptionalPeersLeaveTheDefaultListWithANote() {
        Settings s = parse(Map.of(), Set.of("/usr/sbin/haproxy", "/opt/ody/odyssey"));
        assertEquals(List.of("direct", "pgbouncer", "pgbouncer125", "pgrelay"), s.targets);
        assertEquals(
                List.of(
                        "haproxy not run: /usr/sbin/haproxy not found (apt-get install haproxy to include"
                                + " HAProxy → PgBouncer)",
                        "odyssey not run: /opt/ody/odyssey not found (benchmarks/build-odyssey.sh GIT_DIR"
                                + " builds Odyssey; or set ODYSSEY)"),
                s.notes);
        Settings given = parse(Map.of(), Set.of("/usr/sbin/haproxy"), "--targets", "haproxy");
        assertEquals(List.of("haproxy"), given.targets, "asked for explicitly: stays, as n/a");
    }

    @Test
    void idleOnlyAndMaxClientConn() {
        Settings s = parse("--clients", "none", "--idle-clients", "1500");
        assertTrue(s.points.isEmpty());
        assertEquals(1500, s.idleClients);
        assertEquals(2500, s.maxClientConn);
    }

    @Test
    void helpStopsParsing() {
        assertTrue(parse("--runs", "x", "-h", "--bogus").help);
    }

    @Test
    void errorsSayWhatTheScriptSaid() {
        assertEquals("unknown argument: --bogus", message("--bogus"));
        assertTrue(
                assertThrows(HarnessException.class, () -> parse("--bogus"))
                        instanceof Settings.UsageException);
        assertEquals("--runs needs a value", message("--runs"));
        assertEquals(
                "unknown target 'foo' (direct, pgbouncer, pgbouncer125, odyssey, pgrelay, baseline, haproxy)",
                message("--targets", "direct,foo"));
        assertEquals(
                "unknown protocol 'x' (simple, extended, prepared)", message("--protocols", "x"));
        assertEquals("bad client count '0'", message("--clients", "0"));
        assertEquals("bad client count ''", message("--clients", "1,,2"));
        assertEquals("unknown TLS mode 'on' (off, client, both)", message("--tls", "on"));
        assertEquals("--tls needs at least one mode (off, client, both)", message("--tls", ""));
        assertEquals("RUNS / --runs must be a positive integer, got '0'", message("--runs", "0"));
        assertEquals(
                "nothing to do: --clients none and no --idle-clients",
                message("--clients", "none"));
        assertEquals(
                "--idle-clients runs in plain text only: run it without --tls (or with --tls off)",
                message("--idle-clients", "5", "--tls", "both"));
        HarnessException e =
                assertThrows(HarnessException.class, () -> parse(Map.of("WARMUP", "-1"), Set.of()));
        assertEquals("WARMUP must be an integer (seconds), got '-1'", e.getMessage());
    }

    private static String message(String... args) {
        return assertThrows(HarnessException.class, () -> parse(args)).getMessage();
    }

    @Test
    void splitKeepsInnerEmptiesAndDropsATrailingOne() {
        assertEquals(List.of(), Settings.split(""));
        assertEquals(List.of("1", "", "2"), Settings.split("1,,2"));
        assertEquals(List.of("1", "2"), Settings.split("1,2,"));
    }
}
