package io.pgrelay.routing;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Routes by a Patroni {@link Topology}: writes to the confirmed leader, reads round-robin over
 * healthy replicas.
 *
 * <p><b>Threading.</b> {@link #route} and {@link #stillServes} run per transaction on event-loop
 * threads: they only read one immutable {@link Snapshot} from a volatile field (plus one atomic
 * increment for round robin). Writers ({@link #update}, {@link #confirmWritable}) serialize on a
 * lock, build a new snapshot, and fire the listeners after releasing the lock, on the writer's
 * thread.
 *
 * <p><b>Writes are never guessed.</b> {@code route(PRIMARY)} answers only when all of these hold:
 * the {@code leader} key names a member; that member is {@code running} with a primary role ({@code
 * master}/{@code primary}) or a pre-promotion one ({@code replica}/{@code promoted}); the proxy has
 * confirmed it writable with {@link #confirmWritable} (PostgreSQL reported {@code
 * in_hot_standby=off}); and no switchover is pending. Otherwise it is empty and the proxy holds
 * writes.
 *
 * <p>Why a leader still published as {@code replica} can take writes once confirmed: a node can
 * hold the leader key before PostgreSQL finished promoting (Patroni #2972/#3306), so the key alone
 * is never enough — but once PostgreSQL itself says it is writable, the key holder's member JSON is
 * only stale. Patroni 3.0.2 republishes it one HA cycle after promoting (measured here: leader key
 * moved +1.39 s after the {@code failover} PUT, {@code failover} cleared +1.43 s, member role
 * {@code master} only +2.69 s); requiring {@code master} would stretch every switchover's write gap
 * by up to {@code loop_wait}.
 *
 * <p>The confirmation belongs to one leader "term": it is dropped when the leader key changes hands
 * (name or address) and when the leader stops being running-primary-or-promoting (its PostgreSQL
 * stopped, restarted, or it is demoting), so a stale "writable" never leaks into a new term. A
 * pending switchover holds writes from the moment the {@code failover} key appears (≈150 ms before
 * the old primary terminates its sessions) until the leader changes and the key clears; cleared
 * without a change (cancelled), the old leader is routable again with its confirmation intact.
 *
 * <p><b>Reads.</b> Eligible replicas: role {@code replica}, state {@code running}, no {@code
 * noloadbalance} tag, not the leader, and (when {@code maxReplicaLagBytes >= 0}) at most that far
 * behind the leader's optime — Patroni refreshes these numbers each {@code loop_wait}, so the
 * filter is coarse. With no eligible replica and {@code readFallbackToPrimary}, reads go to the
 * leader when it is a running primary and no switchover is pending; write confirmation is not
 * required for that, because reads are correct on a node still in recovery too. Without fallback,
 * reads are held like writes.
 *
 * <p><b>Stale-topology note.</b> While the source is disconnected the last topology keeps routing:
 * the proxy never invents or drops a leader on its own.
 */
public final class PatroniRouter implements Router {

    private static final Logger log = LoggerFactory.getLogger(PatroniRouter.class);

    /**
     * What routing currently answers; immutable, swapped atomically.
     *
     * @param primary the routable write target, or null (writes held)
     * @param leaderCandidate the leader per etcd, confirmed or not, or null
     * @param replicas eligible read targets in member-name order
     * @param readFallback the read target when {@code replicas} is empty, or null
     * @param primaryServing backends whose existing connections may keep serving writes
     * @param replicaServing backends whose existing connections may keep serving reads
     */
    private record Snapshot(
            Topology topology,
            Backend primary,
            Backend leaderCandidate,
            List<Backend> replicas,
            Backend readFallback,
            Set<Backend> primaryServing,
            Set<Backend> replicaServing) {

        boolean sameOutcome(Snapshot other) {
            return Objects.equals(primary, other.primary)
                    && Objects.equals(leaderCandidate, other.leaderCandidate)
                    && replicas.equals(other.replicas)
                    && Objects.equals(readFallback, other.readFallback)
                    && primaryServing.equals(other.primaryServing)
                    && replicaServing.equals(other.replicaServing);
        }
    }

    // Written under the lock (reload), read by compute() under the lock and by the getters.
    private volatile long maxReplicaLagBytes;
    private volatile boolean readFallbackToPrimary;
    private final AtomicInteger nextReplica = new AtomicInteger();
    private final List<Runnable> listeners = new CopyOnWriteArrayList<>();
    private final Object lock = new Object();
    private volatile Snapshot snapshot;

    // ---- guarded by lock ----
    private Topology topology = Topology.empty();

    /** The leader term the confirmation belongs to: member name + address. */
    private String termLeader;

    private Backend termBackend;
    private boolean termWasEligible;
    private boolean confirmed;

    /**
     * @param maxReplicaLagBytes replicas further behind the leader are not read from; -1 = no limit
     * @param readFallbackToPrimary with no eligible replica, send reads to the leader instead of
     *     holding them
     */
    public PatroniRouter(long maxReplicaLagBytes, boolean readFallbackToPrimary) {
        if (maxReplicaLagBytes < -1) {
            throw new IllegalArgumentException(
                    "maxReplicaLagBytes: " + maxReplicaLagBytes + " (expected: -1 or >= 0)");
        }
        this.maxReplicaLagBytes = maxReplicaLagBytes;
        this.readFallbackToPrimary = readFallbackToPrimary;
        this.snapshot = compute(Topology.empty(), false);
    }

    // ------------------------------------------------------------------------------------------
    // Hot path
    // ------------------------------------------------------------------------------------------

    @Override
    public Optional<Backend> route(Role role) {
        Snapshot s = snapshot;
        if (role == Role.PRIMARY) {
            return Optional.ofNullable(s.primary);
        }
        List<Backend> replicas = s.replicas;
        if (replicas.isEmpty()) {
            return Optional.ofNullable(s.readFallback);
        }
        if (replicas.size() == 1) {
            return Optional.of(replicas.get(0));
        }
        // floorMod keeps the index valid after the counter wraps past Integer.MAX_VALUE
        return Optional.of(
                replicas.get(Math.floorMod(nextReplica.getAndIncrement(), replicas.size())));
    }

    /**
     * False once {@code backend} left the topology or no longer has a role that serves {@code
     * role}: writes — it is the leader, running, primary or promoting (confirmation and pending
     * switchovers gate new leases only); reads — a running replica without {@code noloadbalance},
     * or the running primary leader when reads may fall back to it. Lag is deliberately not
     * considered: it flaps, and closing connections on every flap would churn.
     */
    @Override
    public boolean stillServes(Backend backend, Role role) {
        Snapshot s = snapshot;
        return role == Role.PRIMARY
                ? s.primaryServing.contains(backend)
                : s.replicaServing.contains(backend);
    }

    // ------------------------------------------------------------------------------------------
    // Inputs
    // ------------------------------------------------------------------------------------------

    /** Takes a new topology from the source (any thread; typically the source's own). */
    public void update(Topology newTopology) {
        Objects.requireNonNull(newTopology, "topology");
        boolean changed;
        synchronized (lock) {
            topology = newTopology;
            Member leader = newTopology.leaderMember().orElse(null);
            String name = leader == null ? null : leader.name();
            Backend address = leader == null ? null : leader.backend();
            boolean eligible = leader != null && leader.isRunningPrimaryOrPromoting();
            if (!Objects.equals(name, termLeader) || !Objects.equals(address, termBackend)) {
                if (confirmed) {
                    log.info(
                            "leader changed from {} ({}) to {} ({}): writes held until it is confirmed writable",
                            termLeader,
                            termBackend,
                            name,
                            address);
                }
                confirmed = false;
                termLeader = name;
                termBackend = address;
            } else if (termWasEligible && !eligible && confirmed) {
                log.info(
                        "leader {} is no longer a running primary (role {}, state {}): writes held until it is "
                                + "confirmed writable again",
                        name,
                        leader == null ? "?" : leader.role(),
                        leader == null ? "?" : leader.state());
                confirmed = false;
            }
            termWasEligible = eligible;
            changed = swap();
        }
        if (changed) {
            fireListeners();
        }
    }

    /**
     * Reports what a server connection to {@code backend} said about itself ({@code in_hot_standby}
     * off ⇒ writable). Confirms (or revokes) the current leader term only: reports about any other
     * backend are ignored, as they may predate a leader change.
     */
    public void confirmWritable(Backend backend, boolean writable) {
        Objects.requireNonNull(backend, "backend");
        boolean changed;
        synchronized (lock) {
            if (termBackend == null || !termBackend.equals(backend)) {
                return;
            }
            if (confirmed == writable) {
                return;
            }
            confirmed = writable;
            log.info(
                    "leader {} at {} {}",
                    termLeader,
                    backend,
                    writable ? "confirmed writable" : "reports it is read-only: writes held");
            changed = swap();
        }
        if (changed) {
            fireListeners();
        }
    }

    /**
     * Reload: new read-routing settings take effect at once (the replica rotation is recomputed).
     */
    public void reconfigure(long newMaxReplicaLagBytes, boolean newReadFallbackToPrimary) {
        if (newMaxReplicaLagBytes < -1) {
            throw new IllegalArgumentException(
                    "maxReplicaLagBytes: " + newMaxReplicaLagBytes + " (expected: -1 or >= 0)");
        }
        boolean changed;
        synchronized (lock) {
            maxReplicaLagBytes = newMaxReplicaLagBytes;
            readFallbackToPrimary = newReadFallbackToPrimary;
            changed = swap();
        }
        if (changed) {
            fireListeners();
        }
    }

    /**
     * Runs after every change of what {@link #route}, {@link #leaderCandidate} or {@link
     * #stillServes} answer (leader candidate changed — probe it; leader confirmed; writes held or
     * released; replica set changed), on the thread that caused it. Listeners get no payload: they
     * re-ask the router, so two writers firing out of order is harmless. Must be quick and must not
     * block.
     */
    public void addListener(Runnable listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    // ------------------------------------------------------------------------------------------
    // Introspection (status pages, probes)
    // ------------------------------------------------------------------------------------------

    /** The leader's backend per etcd, confirmed writable or not: what the proxy should probe. */
    public Optional<Backend> leaderCandidate() {
        return Optional.ofNullable(snapshot.leaderCandidate);
    }

    /** Whether the current leader term has been confirmed writable. */
    public boolean leaderConfirmed() {
        synchronized (lock) {
            return confirmed;
        }
    }

    /** The eligible read replicas right now, in round-robin order. */
    public List<Backend> replicas() {
        return snapshot.replicas;
    }

    /** The topology the current routing was computed from. */
    public Topology topology() {
        return snapshot.topology;
    }

    public long maxReplicaLagBytes() {
        return maxReplicaLagBytes;
    }

    public boolean readFallbackToPrimary() {
        return readFallbackToPrimary;
    }

    // ------------------------------------------------------------------------------------------

    /** Recomputes the snapshot under the lock; true when the routing outcome changed. */
    private boolean swap() {
        Snapshot before = snapshot;
        Snapshot next = compute(topology, confirmed);
        snapshot = next;
        return !next.sameOutcome(before);
    }

    private Snapshot compute(Topology t, boolean leaderConfirmed) {
        Member leader = t.leaderMember().orElse(null);
        boolean leaderRunningPrimary = leader != null && leader.isRunningPrimary();
        boolean leaderEligible = leader != null && leader.isRunningPrimaryOrPromoting();
        Backend primary =
                leaderEligible && leaderConfirmed && !t.switchoverPending()
                        ? leader.backend()
                        : null;
        Backend candidate = leader == null ? null : leader.backend();

        List<Backend> replicas = new ArrayList<>();
        Set<Backend> replicaServing = new HashSet<>();
        for (Member m : t.members().values()) {
            if (!m.isRunningReplica()
                    || m.noLoadBalance()
                    || m.name().equals(t.leader())
                    || (candidate != null && m.backend().equals(candidate))) {
                continue;
            }
            replicaServing.add(m.backend());
            if (maxReplicaLagBytes >= 0 && t.lagBytes(m) > maxReplicaLagBytes) {
                continue;
            }
            if (!replicas.contains(m.backend())) {
                replicas.add(m.backend());
            }
        }
        Backend fallback = null;
        if (readFallbackToPrimary && leaderRunningPrimary) {
            replicaServing.add(leader.backend());
            if (replicas.isEmpty() && !t.switchoverPending()) {
                fallback = leader.backend();
            }
        }
        Set<Backend> primaryServing = leaderEligible ? Set.of(leader.backend()) : Set.of();
        return new Snapshot(
                t,
                primary,
                candidate,
                List.copyOf(replicas),
                fallback,
                primaryServing,
                Set.copyOf(replicaServing));
    }

    private void fireListeners() {
        for (Runnable listener : listeners) {
            try {
                listener.run();
            } catch (RuntimeException e) {
                log.error("routing listener failed", e);
            }
        }
    }
}
