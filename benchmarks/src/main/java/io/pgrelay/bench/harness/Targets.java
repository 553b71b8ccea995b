package io.pgrelay.bench.harness;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Starts and stops the proxies of one TLS mode, and knows which targets are running. */
final class Targets {
    private final Context ctx;

    /** In stop order: HAProxy before the PgBouncer it forwards to, as the shell version did. */
    private final Map<String, Proxy> proxies = new LinkedHashMap<>();

    /** The targets that run in the current mode, in --targets order. */
    List<String> active = new ArrayList<>();

    Targets(Context ctx) {
        this.ctx = ctx;
        proxies.put("haproxy", new HaProxyTarget(ctx));
        proxies.put("pgrelay", new PgRelayTarget(ctx, "pgrelay"));
        proxies.put("baseline", new PgRelayTarget(ctx, "baseline"));
        proxies.put("pgbouncer", new PgBouncerTarget(ctx, "pgbouncer"));
        proxies.put("pgbouncer125", new PgBouncerTarget(ctx, "pgbouncer125"));
        proxies.put("odyssey", new OdysseyTarget(ctx));
    }

    void startAll() {
        Settings s = ctx.settings;
        ctx.skipReason.clear();
        // PgBouncer also runs when only haproxy (which forwards to it) is a target.
        if (s.hasTarget("pgbouncer") || s.hasTarget("haproxy")) {
            start("pgbouncer");
        }
        for (String t : List.of("pgbouncer125", "odyssey", "pgrelay", "baseline")) {
            if (s.hasTarget(t)) {
                start(t);
            }
        }
        if (s.hasTarget("haproxy") && !s.points.isEmpty()) {
            start("haproxy");
        }
        active = new ArrayList<>();
        for (String t : s.targets) {
            if (t.equals("direct") || ctx.port.containsKey(t)) {
                active.add(t);
            }
        }
    }

    private void start(String target) {
        if (!proxies.get(target).start()) {
            Log.log("SKIP " + target + ": " + ctx.skipReason.get(target));
        }
    }

    /**
     * Stops every proxy (at the end, or before the next TLS mode starts them with its settings).
     */
    void stopAll() {
        for (Proxy p : proxies.values()) {
            p.stop();
        }
        ctx.port.keySet().removeIf(t -> !t.equals("direct"));
        ctx.tlsEngine.clear();
    }

    /** The process whose CPU a target costs (null for direct PostgreSQL). */
    Long pid(String target) {
        Proxy p = proxies.get(target);
        return p == null ? null : p.pid();
    }
}
