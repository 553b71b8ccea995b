package io.pgrelay.bench.harness;

import java.time.LocalTime;
import java.time.format.DateTimeFormatter;

/** Progress lines on stderr, so that stdout carries only the markdown summary. */
final class Log {
    private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss");

    private Log() {}

    static void log(String message) {
        System.err.println("[" + LocalTime.now().format(CLOCK) + "] " + message);
        System.err.flush();
    }
}
