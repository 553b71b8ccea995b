package io.pgrelay.bench.harness;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Memory readings of a proxy process: VmRSS, and for pgrelay the live Java heap via jcmd. */
final class ProcMemory {
    private static final Pattern HEAP_USED = Pattern.compile("total \\d+K, used \\d+K");

    private final Proc proc;
    private final String jcmd;

    ProcMemory(Proc proc, String javaCmd) {
        this.proc = proc;
        this.jcmd = findJcmd(javaCmd);
    }

    /** jcmd of the JDK the pgrelay JVM runs on: the one next to $JAVA's real path. */
    private static String findJcmd(String javaCmd) {
        Path javaPath = Proc.which(javaCmd);
        if (javaPath == null) {
            return null;
        }
        try {
            Path jcmd = javaPath.toRealPath().getParent().resolve("jcmd");
            return Files.isExecutable(jcmd) ? jcmd.toString() : null;
        } catch (IOException e) {
            return null;
        }
    }

    /** VmRSS in kB, 0 when the process is gone. */
    static long rssKb(long pid) {
        for (String line : Text.lines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.substring(6).trim().split("\\s+")[0]);
            }
        }
        return 0;
    }

    /** A reading once two samples 2 s apart agree within 1 % or 256 kB (at most ~30 s). */
    static long stableRss(long pid) {
        long a = rssKb(pid);
        long b = a;
        for (int i = 0; i < 15; i++) {
            Proc.sleep(2000);
            b = rssKb(pid);
            long d = Math.abs(b - a);
            if (d <= 256 || d * 100 <= a) {
                break;
            }
            a = b;
        }
        return b;
    }

    /** Used Java heap right after a full GC (jcmd GC.run), kB; null without jcmd or a reading. */
    String heapLiveKb(long pid) {
        if (jcmd == null) {
            return null;
        }
        if (!proc.capture(List.of(jcmd, Long.toString(pid), "GC.run"), Map.of()).ok()) {
            return null;
        }
        String info =
                proc.capture(
                                List.of(
                                        "sh",
                                        "-c",
                                        "\"$0\" \"$1\" GC.heap_info 2>/dev/null",
                                        jcmd,
                                        Long.toString(pid)),
                                Map.of())
                        .output();
        long sum = 0;
        for (String line : info.split("\n")) {
            if (!HEAP_USED.matcher(line).find()) {
                continue;
            }
            String[] f = line.trim().split("\\s+");
            for (int i = 0; i < f.length - 1; i++) {
                if (f[i].equals("used")) {
                    Matcher m = Pattern.compile("^(\\d+)").matcher(f[i + 1]);
                    if (m.find()) {
                        sum += Long.parseLong(m.group(1));
                    }
                }
            }
        }
        return sum == 0 ? null : Long.toString(sum);
    }
}
