package io.pgrelay.testkit;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fuzz tests go through logged paths (an md5 secret offered SCRAM, a console command that failed
 * with a stack trace) millions of times: a campaign's output would be nothing but those lines,
 * gigabytes of them. Their oracles are assertions, not log lines; errors still show.
 */
public final class QuietLogs {

    private QuietLogs() {}

    public static void pgrelay() {
        ((Logger) LoggerFactory.getLogger("io.pgrelay")).setLevel(Level.ERROR);
    }
}
