package io.pgrelay.bench.harness;

/**
 * One measured pgbench run. Numbers stay text as pgbench and the formatting printed them, because
 * the medians must be taken (and printed) from exactly those values.
 *
 * @param status "ok", "aborted (exit N)" or "no transactions ..."
 * @param cpuWithPgbouncer for haproxy: HAProxy and the PgBouncer behind it together
 */
record RunRecord(
        String status,
        String tps,
        String mean,
        String p99,
        String failed,
        int abortedClients,
        String cpu,
        String cpuWithPgbouncer) {}
