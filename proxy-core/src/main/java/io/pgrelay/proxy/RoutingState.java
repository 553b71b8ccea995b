package io.pgrelay.proxy;

import io.pgrelay.config.ProxyConfig;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.EtcdTopologySource;
import io.pgrelay.routing.Member;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.routing.Role;
import io.pgrelay.routing.Router;
import io.pgrelay.routing.StaticRouter;
import io.pgrelay.routing.Topology;
import io.pgrelay.routing.TopologySource;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The router (and the etcd watch feeding it when following Patroni), what server connections tell
 * it (a leader that cannot be reached, a promotion), and what happens when its answer changes: held
 * clients wake, pools whose backend lost its role are retired, leader changes are counted.
 */
final class RoutingState {

    private static final Logger log = LoggerFactory.getLogger(RoutingState.class);

    private final Router router;

    /** The router when following Patroni, else null. */
    private final PatroniRouter patroni;

    private final ProxyMetrics metrics;
    private final ServerPools pools;
    private final HeldClients held;

    /**
     * Where {@link #askAgainSoon} schedules (the event loops; null before start and after stop).
     */
    private final Supplier<ScheduledExecutorService> scheduler;

    private final AtomicBoolean wakeScheduled = new AtomicBoolean();

    static final long PROMOTION_POLL_MILLIS = 25;
    private volatile Backend lastPrimary;
    // The last leader etcd named (confirmed or not): a change cuts the former leader's write pools.
    // Guarded by this.
    private Backend lastLeader;

    /** The etcd watch when following Patroni, else null. */
    private final TopologySource topologySource;

    RoutingState(
            ProxyConfig config,
            ProxyMetrics metrics,
            ServerPools pools,
            HeldClients held,
            Supplier<ScheduledExecutorService> scheduler) {
        this.scheduler = scheduler;
        this.metrics = metrics;
        this.pools = pools;
        this.held = held;
        if (config.routingSource().equals("patroni")) {
            patroni =
                    new PatroniRouter(config.maxReplicaLagBytes(), config.readFallbackToPrimary());
            router = patroni;
            patroni.addListener(this::onRoutingChange);
            topologySource =
                    new EtcdTopologySource(
                            EtcdTopologySource.Settings.of(
                                            config.etcdEndpoints(),
                                            config.patroniNamespace(),
                                            config.patroniScope())
                                    .withRequestTimeout(config.etcdRequestTimeout()));
        } else {
            router = new StaticRouter(config.primary(), config.replicas());
            patroni = null;
            topologySource = null;
        }
    }

    /** Starts following the cluster (Patroni), or logs the configured backends. */
    void start(ProxyConfig config) {
        if (patroni == null) {
            log.info("backend primary {}", config.primary());
            for (Backend replica : config.replicas()) {
                log.info("backend replica {}", replica);
            }
            if (config.replicas().isEmpty()) {
                log.info("no replicas configured: the read port uses the primary");
            }
            return;
        }
        log.info(
                "routing: Patroni scope \"{}\" in etcd {} (namespace {})",
                config.patroniScope(),
                config.etcdEndpoints(),
                config.patroniNamespace());
        topologySource.start(
                t -> {
                    patroni.update(t);
                    metrics.watchMembers(this, t.members().keySet());
                    // Any cluster event (a member turning master, a key moving) is a good moment
                    // for held writes to look again, even when the routing answer itself did not
                    // change.
                    if (held.anyHeld()) {
                        held.wake();
                    }
                });
    }

    /** Stops the etcd watch. */
    void close() {
        if (topologySource != null) {
            topologySource.close();
        }
    }

    Router router() {
        return router;
    }

    PatroniRouter patroni() {
        return patroni;
    }

    /**
     * Why writes have nowhere to go right now (Patroni routing), for the error a held client
     * finally gets.
     */
    String noPrimaryReason() {
        if (patroni == null) {
            return "no primary";
        }
        Topology t = patroni.topology();
        String etcd =
                t.sourceConnected() ? "" : " (etcd unreachable, using the last known topology)";
        if (t.switchoverPending()) {
            return "switchover in progress" + etcd;
        }
        if (t.leader() == null) {
            return "the cluster has no leader" + etcd;
        }
        return "leader " + t.leader() + " is not confirmed writable" + etcd;
    }

    /**
     * Connecting to {@code backend} failed: if it was the confirmed leader, writes wait for a new
     * confirmation.
     */
    void reportUnavailable(Backend backend) {
        if (patroni != null) {
            patroni.confirmWritable(backend, false);
        }
    }

    /** A server connection reported in_hot_standby (at login, or when it changed: promotion). */
    void reportHotStandby(Backend backend, String value) {
        if (patroni != null && value != null) {
            patroni.confirmWritable(backend, value.equals("off"));
        }
    }

    /** A held write asked the etcd leader, which is still in recovery (promoting). */
    void leaderStillInRecovery(Backend backend) {
        if (patroni != null
                && held.anyHeld()
                && backend.equals(patroni.leaderCandidate().orElse(null))) {
            askAgainSoon();
        }
    }

    /**
     * The router's answer changed: wake held clients, retire pools whose backend no longer serves
     * their role (idle connections close now, busy ones when released), count leader changes.
     */
    private void onRoutingChange() {
        Backend primary = router.route(Role.PRIMARY).orElse(null);
        if (primary != null && !primary.equals(lastPrimary)) {
            if (lastPrimary != null) {
                metrics.leaderChanged();
            }
            log.info("writes now go to {}", primary);
            lastPrimary = primary;
        }
        Backend[] change = leaderChange();
        Backend former = change[0];
        Backend candidate = change[1];
        for (ServerPool p : pools.all()) {
            Backend backend = p.key().backend();
            if (p.role() == Role.PRIMARY && backend.equals(former)) {
                // Another member took the leader key, so Patroni has demoted this one (PostgreSQL
                // restarted: its sessions are gone) or it is cut off and fenced itself: nothing in
                // flight there can commit any more. Cut now, because from a black-holed host no
                // answer ever comes and its clients would wait for TCP to give up
                // (server_tcp_user_timeout); their next transactions wait for the new leader.
                p.pool().cut(backend + " is no longer the leader, " + candidate + " is");
            } else if (!router.stillServes(backend, p.role())) {
                p.pool().retire(backend + " no longer serves " + p.role().label());
            }
        }
        held.wake();
    }

    /**
     * The leader etcd names now and, if that is a change from the last one seen, the former one:
     * {former or null, current or null}. Read and recorded under a lock because listeners run on
     * several threads: a thread holding an older answer must not record it after a newer one (it
     * would "change" the leader back and cut the new leader's connections).
     */
    private synchronized Backend[] leaderChange() {
        // Static routing: a RELOAD that names another primary leaves the old one as it was
        // (writable, as far as pgrelay knows), so its transactions finish there.
        Backend candidate = patroni != null ? patroni.leaderCandidate().orElse(null) : null;
        if (candidate == null) {
            return new Backend[] {null, null};
        }
        Backend previous = lastLeader;
        lastLeader = candidate;
        return new Backend[] {candidate.equals(previous) ? null : previous, candidate};
    }

    /**
     * The etcd leader is still in recovery: Patroni promotes it right after taking the key, and
     * PostgreSQL reports the end of recovery only when asked. Held writes ask again after {@link
     * #PROMOTION_POLL_MILLIS} rather than at the pool janitor's next safety-net wake (200 ms), so
     * they start within that of the promotion. One wake at a time; each held client's question
     * needs a pooled connection, so the questions in flight stay within the pool size.
     */
    private void askAgainSoon() {
        ScheduledExecutorService executor = scheduler.get();
        if (executor == null || !wakeScheduled.compareAndSet(false, true)) {
            return;
        }
        try {
            executor.schedule(
                    () -> {
                        wakeScheduled.set(false);
                        held.wake();
                    },
                    PROMOTION_POLL_MILLIS,
                    TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException stopping) {
            wakeScheduled.set(false);
        }
    }

    /** Replicas the read port may use right now. */
    double eligibleReplicaCount(ProxyConfig config) {
        return patroni != null ? patroni.replicas().size() : config.replicas().size();
    }

    /** How far {@code member} is behind the leader, in bytes; NaN when unknown. */
    double replicaLagBytes(String member) {
        Topology t = patroni.topology();
        Member m = t.members().get(member);
        if (m == null) {
            return Double.NaN;
        }
        long lag = member.equals(t.leader()) ? 0 : t.lagBytes(m);
        return lag == Long.MAX_VALUE ? Double.NaN : lag;
    }
}
