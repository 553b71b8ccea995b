package io.pgrelay.bench.harness;

import java.nio.file.Path;

/** CPU a proxy used, from /proc/PID/stat: what a proxy costs per transaction, not just its tps. */
final class Cpu {
    private Cpu() {}

    /**
     * user+system clock ticks of a process so far (fields 14 and 15 of /proc/PID/stat), 0 if gone.
     */
    static long ticks(Long pid) {
        if (pid == null) {
            return 0;
        }
        String stat = Text.read(Path.of("/proc/" + pid + "/stat"));
        return ticksOf(stat);
    }

    /** The process name may hold spaces and parentheses, so fields count from its last ") ". */
    static long ticksOf(String stat) {
        int end = stat.lastIndexOf(") ");
        if (end < 0) {
            return 0;
        }
        String[] f = stat.substring(end + 2).trim().split("\\s+");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }

    /** CPU ms per 1,000 transactions. */
    static String perThousand(long ticks, long hz, long transactions) {
        return NumFmt.fixed((double) ticks / hz * 1000 / transactions * 1000, 1);
    }
}
