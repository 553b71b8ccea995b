package io.pgrelay.bench.harness;

import java.util.List;

/** What the PgBouncer and Odyssey targets ran, and what the prepared points compare. */
final class PeerFootnotes {
    private final Context ctx;

    PeerFootnotes(Context ctx) {
        this.ctx = ctx;
    }

    String render() {
        Settings s = ctx.settings;
        StringBuilder out = new StringBuilder();
        StringBuilder list = new StringBuilder();
        for (String t : List.of("pgbouncer", "pgbouncer125", "odyssey")) {
            String v = ctx.version.get(t);
            if (ctx.port.containsKey(t) && v != null && !v.isEmpty()) {
                list.append(list.length() > 0 ? "; " : "").append(t).append(": ").append(v);
            }
        }
        if (list.length() > 0) {
            out.append("- versions: ").append(list).append(".\n");
        }
        if (ctx.port.containsKey("pgbouncer125")) {
            out.append(
                    String.format(
                            "- pgbouncer125: %s, built from source (benchmarks/build-pgbouncer.sh), the same settings as pgbouncer (%spgbouncer125.ini) plus max_prepared_statements = 200.\n",
                            s.pgbouncer125, ctx.prefix));
        }
        if (ctx.port.containsKey("odyssey")) {
            out.append(
                    String.format(
                            "- odyssey: %s, built from source (benchmarks/build-odyssey.sh); %sodyssey.conf: pool \"transaction\", pool_size %s, workers %s, authentication \"scram-sha-256\" with the same password as the userlist (storage_password for its server logins), pool_reserve_prepared_statement yes, pool_discard no (no reset query between transactions, as PgBouncer in transaction mode), Odyssey's defaults otherwise (e.g. pool_attach_check yes); its cpu column is the whole process (all its threads).\n",
                            s.odyssey, ctx.prefix, s.poolSize, s.odysseyWorkers));
        }
        if (s.protocols.contains("prepared") && !s.clients.isEmpty()) {
            StringBuilder peers = new StringBuilder();
            for (String t : List.of("pgbouncer125", "odyssey")) {
                if (ctx.port.containsKey(t)) {
                    peers.append(peers.length() > 0 ? " and " : "").append(t);
                }
            }
            out.append(
                    String.format(
                            "- prepared (pgbench -M prepared: protocol-level named prepared statements, each client prepares once and then sends Bind/Execute): comparable only between the proxies that carry prepared statements across server connections in transaction mode: pgrelay, pgbouncer125 (max_prepared_statements) and odyssey (pool_reserve_prepared_statement); %s.",
                            peers.length() > 0
                                    ? "in this run: " + peers
                                    : "neither of those two ran here (--help says how to build them)"));
            if (s.hasTarget("pgbouncer") || s.hasTarget("haproxy")) {
                out.append(
                        " † PgBouncer 1.18 (pgbouncer, and haproxy, which forwards to it) cannot: with more than one client its prepared runs abort (prepared statement \"P_0\" already exists / does not exist), and with one client they can pass only because PgBouncer keeps handing that client the server connection it used last (server_round_robin = 0); its prepared cells and the ratios against it are not a comparison.");
            }
            out.append('\n');
        }
        return out.toString();
    }
}
