package io.pgrelay.bench.harness;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/** The runs of one TLS mode, keyed by target, point and run number. */
final class Results {
    private final Map<String, RunRecord> runs = new HashMap<>();

    /** "target|protocol|clients" of points a target sat out (direct above max_connections). */
    private final Set<String> skipped = new HashSet<>();

    static String key(String target, String protocol, int clients) {
        return target + "|" + protocol + "|" + clients;
    }

    void put(String target, String protocol, int clients, int run, RunRecord record) {
        runs.put(key(target, protocol, clients) + "|" + run, record);
    }

    RunRecord get(String target, String protocol, int clients, int run) {
        return runs.get(key(target, protocol, clients) + "|" + run);
    }

    void skip(String target, String protocol, int clients) {
        skipped.add(key(target, protocol, clients));
    }

    boolean skipped(String target, String protocol, int clients) {
        return skipped.contains(key(target, protocol, clients));
    }
}
