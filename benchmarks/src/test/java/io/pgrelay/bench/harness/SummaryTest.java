package io.pgrelay.bench.harness;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SummaryTest {
    @Test
    void idleTableRowsAreTheShellVersionsAwkOutput() {
        Settings s =
                Settings.parse(
                        List.of("--clients", "none", "--idle-clients", "300"),
                        new Settings.Machine(
                                Path.of("/repo"), Path.of("/cwd"), 2, bin -> true, Map.of()));
        List<IdleTest.Reading> done =
                List.of(
                        new IdleTest.Reading(
                                "pgrelay", 300, 3, 153600, 160000, 158000, "20480", "18000"),
                        new IdleTest.Reading("pgbouncer", 0, 125, 5000, 4990, 5000, null, null));
        List<String> lines =
                List.of(
                        Summary.idleTable(s, done, Map.of("pgbouncer", "failed 300: x"))
                                .split("\n"));
        assertEquals("", lines.get(0));
        assertEquals(
                "### 300 idle client connections per proxy (SCRAM login, then idle), one proxy at"
                        + " a time",
                lines.get(1));
        // expected rows printed by the shell version's awk for the same numbers
        assertEquals(
                "| pgrelay | 300/300 | 3 | 150.0 | 156.2 | 6.2 | 21.33 | 154.3 | 8.27 |",
                lines.get(5));
        assertEquals("| pgbouncer | 0/300 | 125 | 4.9 | 4.9 | -0.0 | - | 4.9 | - |", lines.get(6));
        assertEquals(
                "- connections opened by benchmarks/src/main/java/io/pgrelay/bench/IdleClients.java"
                        + " (4 threads; startup + SCRAM-SHA-256 as user bench, then no traffic);"
                        + " max_client_conn (Odyssey: client_max) 2000 on every proxy; while one"
                        + " proxy is measured the others are idle.",
                lines.get(8));
        assertEquals(
                "- RSS: VmRSS of the proxy process, each reading taken once two samples 2 s apart"
                        + " agree within 1 % or 256 kB; kB per connection = (with idle - before) /"
                        + " logged in.",
                lines.get(9));
        assertEquals("- pgbouncer: failed 300: x", lines.get(11));
    }

    @Test
    void idleOnlySummaryHasItsOwnHeading() {
        Settings s =
                Settings.parse(
                        List.of("--clients", "none", "--idle-clients", "10"),
                        new Settings.Machine(
                                Path.of("/repo"), Path.of("/cwd"), 2, bin -> true, Map.of()));
        String out =
                Summary.render(
                        s,
                        List.of("- pgrelay not run (n/a): x\n"),
                        List.of("note"),
                        List.of(),
                        Map.of(),
                        "D",
                        2,
                        "benchmarks/results/X");
        List<String> lines = List.of(out.split("\n"));
        assertEquals("## pgrelay vs PgBouncer: idle client connections, D (2 cores)", lines.get(0));
        assertEquals("- pgrelay not run (n/a): x", lines.get(1));
        assertEquals("- note", lines.get(2));
        assertEquals("- raw outputs: benchmarks/results/X", lines.get(lines.size() - 1));
    }
}
