package io.pgrelay.routing;

import java.util.Objects;

/**
 * One Patroni member as last published in its {@code members/<name>} key.
 *
 * <p>The values are Patroni's own view, refreshed about every {@code loop_wait}; they can be stale
 * by that much, and a node can hold the leader key while its PostgreSQL is still in recovery (hence
 * the router's separate write confirmation).
 *
 * @param name the member name (the last path element of its key)
 * @param backend host and port from {@code conn_url}
 * @param role Patroni's role string: {@code master} (3.x) or {@code primary} (4.x), {@code
 *     replica}, {@code standby_leader}, transient {@code promoted} / {@code demoted}, or anything a
 *     future Patroni writes
 * @param state {@code running}, {@code starting}, {@code stopped}, {@code stopping}, {@code
 *     restarting}, {@code crashed}, {@code creating replica}, ...
 * @param timeline PostgreSQL timeline, -1 when not published
 * @param xlogLocation WAL position as an integer LSN, -1 when not published
 * @param noLoadBalance tag {@code noloadbalance}: never send reads here
 * @param noFailover tag {@code nofailover}: Patroni never promotes this member
 */
public record Member(
        String name,
        Backend backend,
        String role,
        String state,
        long timeline,
        long xlogLocation,
        boolean noLoadBalance,
        boolean noFailover) {

    public static final String ROLE_MASTER = "master";
    public static final String ROLE_PRIMARY = "primary";
    public static final String ROLE_REPLICA = "replica";
    public static final String ROLE_PROMOTED = "promoted";
    public static final String STATE_RUNNING = "running";

    public Member {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(backend, "backend");
        role = role == null ? "" : role;
        state = state == null ? "" : state;
    }

    /** {@code master} (Patroni 3.x) or {@code primary} (Patroni 4.x): a read-write primary role. */
    public boolean isPrimaryRole() {
        return ROLE_MASTER.equals(role) || ROLE_PRIMARY.equals(role);
    }

    public boolean isRunning() {
        return STATE_RUNNING.equals(state);
    }

    /** Role {@code replica} and state {@code running}. */
    public boolean isRunningReplica() {
        return ROLE_REPLICA.equals(role) && isRunning();
    }

    /** Role {@code master}/{@code primary} and state {@code running}. */
    public boolean isRunningPrimary() {
        return isPrimaryRole() && isRunning();
    }

    /**
     * State {@code running} and a role a leader-key holder can have while it is, or is becoming,
     * the writable primary: {@code master}/{@code primary}, or {@code replica}/{@code promoted}
     * because Patroni republishes the member key only on its next HA cycle after promoting. Not
     * {@code demoted}, {@code standby_leader} or anything unknown.
     */
    public boolean isRunningPrimaryOrPromoting() {
        return isRunning()
                && (isPrimaryRole() || ROLE_REPLICA.equals(role) || ROLE_PROMOTED.equals(role));
    }
}
