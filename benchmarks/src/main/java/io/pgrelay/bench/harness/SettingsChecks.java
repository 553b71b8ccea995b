package io.pgrelay.bench.harness;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/** The checks the shell version made on its options, with its error messages word for word. */
final class SettingsChecks {
    private SettingsChecks() {}

    static void lists(Settings s) {
        for (String t : s.targets) {
            if (!Settings.ALL_TARGETS.contains(t) && !t.equals("baseline")) {
                throw new HarnessException(
                        "unknown target '"
                                + t
                                + "' (direct, pgbouncer, pgbouncer125, odyssey, pgrelay, baseline, haproxy)");
            }
        }
        for (String p : s.protocols) {
            if (!List.of("simple", "extended", "prepared").contains(p)) {
                throw new HarnessException(
                        "unknown protocol '" + p + "' (simple, extended, prepared)");
            }
        }
        List<String> counts = new ArrayList<>(s.clients);
        counts.addAll(s.connectClients);
        for (String c : counts) {
            if (!c.matches("[1-9][0-9]*")) {
                throw new HarnessException("bad client count '" + c + "'");
            }
        }
        for (String m : s.tlsModes) {
            switch (m) {
                case "off" -> {}
                case "client", "both" -> s.tlsUsed = true;
                default ->
                        throw new HarnessException(
                                "unknown TLS mode '" + m + "' (off, client, both)");
            }
        }
        if (s.tlsModes.isEmpty()) {
            throw new HarnessException("--tls needs at least one mode (off, client, both)");
        }
        if (!s.tlsKey.equals("ec") && !s.tlsKey.equals("rsa")) {
            throw new HarnessException("TLS_KEY must be ec or rsa, got '" + s.tlsKey + "'");
        }
    }

    // haproxy, pgbouncer125 and odyssey are in the default list only where their binaries exist;
    // asked for explicitly, a missing binary makes the target an n/a column with the reason.
    static void dropMissingDefaults(Settings s, Predicate<String> executable) {
        if (s.targetsGiven) {
            return;
        }
        if (!executable.test(s.haproxy)) {
            drop(
                    s,
                    "haproxy",
                    s.haproxy
                            + " not found (apt-get install haproxy to include HAProxy → PgBouncer)");
        }
        if (!executable.test(s.pgbouncer125)) {
            drop(
                    s,
                    "pgbouncer125",
                    s.pgbouncer125
                            + " not found (benchmarks/build-pgbouncer.sh GIT_DIR builds PgBouncer 1.25; or set"
                            + " PGBOUNCER125)");
        }
        if (!executable.test(s.odyssey)) {
            drop(
                    s,
                    "odyssey",
                    s.odyssey
                            + " not found (benchmarks/build-odyssey.sh GIT_DIR builds Odyssey; or set ODYSSEY)");
        }
    }

    private static void drop(Settings s, String target, String note) {
        s.targets.remove(target);
        s.notes.add(target + " not run: " + note);
    }

    static int positive(String value, String message) {
        if (!value.matches("[1-9][0-9]*")) {
            throw new HarnessException(String.format(message, value));
        }
        return Integer.parseInt(value);
    }

    static int natural(String value, String message) {
        if (!value.matches("[0-9]+")) {
            throw new HarnessException(String.format(message, value));
        }
        return Integer.parseInt(value);
    }
}
