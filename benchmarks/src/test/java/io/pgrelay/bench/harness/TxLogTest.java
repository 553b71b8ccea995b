package io.pgrelay.bench.harness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TxLogTest {
    @Test
    void latencyIsFieldThreeAndWordsThereAreSkipped() {
        assertEquals(1234L, TxLog.latencyField("0 199 1234 0 1732999999 123456"));
        assertNull(TxLog.latencyField("3 7 failed 0 1732999999 123456"));
        assertNull(TxLog.latencyField("3 8 skipped 0 1732999999 123456"));
        assertNull(TxLog.latencyField(""));
    }

    @Test
    void nearestRankPercentilesInMilliseconds() {
        long[] us = new long[200];
        for (int i = 0; i < us.length; i++) {
            us[i] = (i + 1) * 10L; // 10 .. 2000 µs
        }
        TxLog.Summary s = TxLog.summarize(us);
        assertEquals(200, s.count());
        assertEquals("1.005", s.mean());
        assertEquals("1.000", s.p50(), "rank 100 of 200");
        assertEquals("1.980", s.p99(), "rank 198 of 200");
        assertEquals("2.000", s.max());
        assertEquals("200 1.005 1.000 1.980 2.000", s.line());
        assertEquals(TxLog.Summary.EMPTY, TxLog.summarize(new long[0]));
    }

    @Test
    void readsEveryThreadsFileOfARun(@TempDir Path dir) throws Exception {
        Files.writeString(
                dir.resolve("pgrelay-simple-c1-r1.123"), "0 1 100 0 1 1\n0 2 300 0 1 2\n");
        Files.writeString(
                dir.resolve("pgrelay-simple-c1-r1.123.1"), "1 1 failed 0 1 3\n1 2 200 0 1 4\n");
        Files.writeString(dir.resolve("pgrelay-simple-c1-r10.5"), "0 1 999999 0 1 1\n");
        List<Path> files = TxLog.files(dir.resolve("pgrelay-simple-c1-r1"));
        assertEquals(2, files.size(), "not the r10 file");
        TxLog.Summary s = TxLog.read(files);
        assertEquals("3 0.200 0.200 0.300 0.300", s.line());
    }

    @Test
    void pgbenchOutputNumbers() {
        List<String> out =
                List.of(
                        "pgbench (15.10 (Debian 15.10-0+deb12u1))",
                        "transaction type: <builtin: select only>",
                        "number of transactions actually processed: 12574",
                        "number of failed transactions: 0 (0.000%)",
                        "latency average = 2.393 ms",
                        "initial connection time = 12.345 ms",
                        "tps = 6640.591580 (without initial connection time)");
        PgbenchOutput p = PgbenchOutput.parse(out);
        assertEquals("6640.591580", p.tps());
        assertEquals("0", p.failed());
        assertEquals("12574", p.processed());
        assertEquals(0, p.abortedClients());
        assertFalse(p.runAborted());
        assertEquals("1.9", p.window());
        assertEquals("2.393", PgbenchOutput.latencyAverage(out));

        PgbenchOutput aborted =
                PgbenchOutput.parse(
                        List.of(
                                "pgbench: error: client 3 aborted in command 1 (SQL) of script 0; ERROR:  x",
                                "pgbench: error: client 4 aborted in command 1 (SQL) of script 0; ERROR:  x",
                                "number of transactions actually processed: 10/20",
                                "tps = 5.000000 (including connections establishing)",
                                "tps = 6.000000 (excluding connections establishing)",
                                "pgbench: error: Run was aborted; the above results are incomplete."));
        assertEquals("6.000000", aborted.tps(), "pgbench 13: the line without connections");
        assertEquals("10", aborted.processed());
        assertEquals(2, aborted.abortedClients());
        assertTrue(aborted.runAborted());
        assertEquals("0", PgbenchOutput.parse(List.of()).window());
    }

    @Test
    void cpuTicksCountFromTheEndOfTheProcessName() {
        String stat =
                "4242 (java (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 30 0 1 2 3";
        assertEquals(300, Cpu.ticksOf(stat));
        assertEquals("125.7", Cpu.perThousand(1257, 100, 100_000));
    }
}
