package io.pgrelay.bench.harness;

/** A target the benchmark starts in front of PostgreSQL. */
interface Proxy {
    /** Starts it for the current TLS mode; false (with ctx.skipReason set) when it cannot run. */
    boolean start();

    void stop();

    /** The process whose CPU the target costs, or null. */
    Long pid();
}
