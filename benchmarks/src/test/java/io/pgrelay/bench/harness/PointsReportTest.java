package io.pgrelay.bench.harness;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The tables rendered from the runs.csv of a run of the shell version must be the lines that
 * version printed for it (shell-tables.md, copied from its summary).
 */
class PointsReportTest {
    private static String resource(String name) throws Exception {
        try (InputStream in = PointsReportTest.class.getResourceAsStream(name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static Settings settings(String... args) {
        return Settings.parse(
                List.of(args),
                new Settings.Machine(
                        Path.of("/repo"),
                        Path.of("/cwd"),
                        2,
                        bin -> true,
                        Map.of("DURATION", "2", "RUNS", "2", "WARMUP", "1")));
    }

    /** Results from runs.csv: the numbers exactly as the shell version stored them. */
    private static Results results(String csv) {
        Results r = new Results();
        for (String line : csv.split("\n")) {
            if (line.startsWith("protocol,")) {
                continue;
            }
            String[] f = line.split(",", -1);
            RunRecord rec =
                    new RunRecord(
                            f[5].equals("aborted") ? "aborted (exit 2)" : f[5],
                            f[6],
                            f[7],
                            f[9].equals("-") ? "" : f[9],
                            f[13],
                            Integer.parseInt(f[14]),
                            f[15],
                            f[16]);
            r.put(f[4], f[0], Integer.parseInt(f[1]), Integer.parseInt(f[2]), rec);
        }
        return r;
    }

    @Test
    void tablesMatchTheShellVersionsOutput() throws Exception {
        Settings s =
                settings(
                        "--targets",
                        "direct,pgbouncer,pgrelay,haproxy",
                        "--clients",
                        "1,16",
                        "--protocols",
                        "simple,extended");
        PointsReport.Section sec =
                new PointsReport.Section(
                        TlsMode.OFF,
                        s.targets,
                        Map.of(),
                        results(resource("shell-runs.csv")),
                        "2026-11-30 23:44 UTC",
                        2);
        String expected = resource("shell-tables.md");
        assertEquals(
                List.of(expected.split("\n")),
                List.of(new PointsReport(s, sec).tables().split("\n")));
    }

    @Test
    void cellsSayWhyThereIsNoNumber() {
        Settings s =
                settings(
                        "--targets",
                        "direct,pgbouncer,pgrelay,odyssey",
                        "--clients",
                        "1,300",
                        "--protocols",
                        "prepared");
        Results r = new Results();
        r.put(
                "pgbouncer",
                "prepared",
                1,
                1,
                new RunRecord("ok", "100.4", "0.5", "1.0", "0", 0, "30.0", ""));
        r.put(
                "pgbouncer",
                "prepared",
                1,
                2,
                new RunRecord("aborted (exit 2)", "90", "", "", "0", 3, "", ""));
        r.put(
                "pgrelay",
                "prepared",
                1,
                1,
                new RunRecord("ok", "150", "0.25", "0.5", "0", 0, "40.0", ""));
        r.put(
                "pgrelay",
                "prepared",
                1,
                2,
                new RunRecord("ok", "250", "0.35", "0.7", "0", 0, "60.0", ""));
        r.put(
                "pgbouncer",
                "prepared",
                300,
                1,
                new RunRecord("aborted (exit 2)", "80", "", "", "", 5, "", ""));
        r.put(
                "pgbouncer",
                "prepared",
                300,
                2,
                new RunRecord("aborted (exit 2)", "60", "", "", "", 5, "", ""));
        r.put(
                "pgrelay",
                "prepared",
                300,
                1,
                new RunRecord("no transactions within -T 8s", "", "", "", "", 0, "", ""));
        r.skip("direct", "prepared", 300);
        PointsReport.Section sec =
                new PointsReport.Section(
                        TlsMode.OFF,
                        List.of("direct", "pgbouncer", "pgrelay"),
                        Map.of("odyssey", "/x/odyssey not found"),
                        r,
                        "2026-12-01 00:00 UTC",
                        2);
        List<String> lines = List.of(new PointsReport(s, sec).tables().split("\n"));
        assertEquals(
                "| protocol | clients | direct | pgbouncer | pgrelay | odyssey | pgrelay/pgbouncer | pgrelay/direct | pgrelay/odyssey |",
                lines.get(6));
        assertEquals(
                "| prepared | 1 | ERR | 100 (1/2 runs aborted) † | 200 | n/a | 1.99 † | - | - |",
                lines.get(8));
        assertEquals(
                "| prepared | 300 | skip | 70 (aborted) † | 0 (no tx) | n/a | - | - | - |",
                lines.get(9));
        assertEquals(
                "| prepared | 1 | pgbouncer | 100 (1/2 runs aborted) † | 100–100 | 0.500 | 1.000 | 0 (+3 clients aborted) | 30.0 | 1/2 (1 aborted) | - | - |",
                lines.get(16));
        assertEquals(
                "| prepared | 1 | pgrelay | 200 | 150–250 | 0.300 | 0.600 | 0 | 50.0 | 2/2 | 1.99 † | - |",
                lines.get(17));
        assertEquals(
                "| prepared | 300 | direct | skip | - | - | - | - | - | - | - | - |",
                lines.get(18));
        assertEquals(
                "| prepared | 300 | pgbouncer | 70 (aborted) † | 60–80 | - | - | 0 (+10 clients aborted) | - | 0/2 (2 aborted) | - | - |",
                lines.get(19));
        assertEquals(
                "| prepared | 300 | pgrelay | 0 (no tx) | - | - | - | 0 | - | 0/2 (1 no tx) | - | - |",
                lines.get(20));
    }

    @Test
    void tlsModesNameThemselvesInHeadingAndLabels() {
        Settings s =
                settings(
                        "--targets",
                        "direct,pgrelay",
                        "--clients",
                        "1",
                        "--protocols",
                        "simple",
                        "--tls",
                        "off,client");
        PointsReport.Section sec =
                new PointsReport.Section(
                        TlsMode.CLIENT, s.targets, Map.of(), new Results(), "D", 2);
        List<String> lines = List.of(new PointsReport(s, sec).tables().split("\n"));
        assertEquals(
                "## pgbench -n -S, TLS client side (pgbench → proxy over TLS, proxy → PostgreSQL plain; direct plain), 2 s x 2 run(s) per point, scale 10, pool size 20, D (2 cores)",
                lines.get(0));
        assertEquals(
                "| protocol | clients | direct (no TLS) | pgrelay | pgrelay/direct |",
                lines.get(6));
        assertEquals("| simple | 1 | ERR | ERR | - |", lines.get(8));
        assertEquals(", no TLS (plain text everywhere)", TlsMode.OFF.heading(true));
        assertEquals("", TlsMode.OFF.heading(false));
    }
}
