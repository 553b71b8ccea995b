package io.pgrelay.routing;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.lease.LeaseKeepAliveResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps this instance's peer key, {@code <namespace><scope>/pgrelay/peers/<id>}, in etcd under a
 * lease: the key says where the instance takes CancelRequests for the keys it issued, and is gone
 * within {@link #TTL_SECONDS} when the instance dies (at once when it stops). The other instances
 * read the peer keys with the rest of the scope ({@link Topology#peers()}).
 *
 * <p>With a configured id the key is claimed if free, or if the instance that holds it has the same
 * instance id and address (this instance's previous run, whose lease has not expired yet). With id
 * 0 the id this instance id held before is taken back if still there, else the lowest free one.
 * Claims are transactions on the key's version, so two instances never hold one id.
 *
 * <p>All etcd calls run on one thread of its own, each bounded by the request timeout; a failed
 * call drops the jetcd client (it can stay stuck in reconnect backoff after an outage) and the next
 * attempt builds a new one.
 */
public final class EtcdPeerRegistration implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(EtcdPeerRegistration.class);

    /** The lease's time to live: how long a dead instance's key stays. */
    static final long TTL_SECONDS = 10;

    private static final long KEEP_ALIVE_SECONDS = TTL_SECONDS / 3;
    private static final long MAX_RETRY_SECONDS = 10;

    private final EtcdTopologySource.Settings etcd;
    private final int wantedId;
    private final String instanceId;
    private final String host;
    private final int port;
    private final String prefix;
    private final ScheduledThreadPoolExecutor thread;

    private volatile int id;
    private Client client;
    private long leaseId;
    private long retrySeconds = 1;
    private int failures;

    public EtcdPeerRegistration(
            EtcdTopologySource.Settings etcd,
            int wantedId,
            String instanceId,
            String host,
            int port) {
        this.etcd = etcd;
        this.wantedId = wantedId;
        this.instanceId = instanceId;
        this.host = host;
        this.port = port;
        this.prefix = etcd.keyPrefix() + Peer.KEY_SEGMENT;
        this.thread =
                new ScheduledThreadPoolExecutor(
                        1,
                        r -> {
                            Thread t = new Thread(r, "pgrelay-peer-key");
                            t.setDaemon(true);
                            return t;
                        });
        thread.setRemoveOnCancelPolicy(true);
    }

    public void start() {
        thread.execute(this::register);
    }

    /** The peer id this instance holds in etcd; 0 until the first claim succeeded. */
    public int id() {
        return id;
    }

    private void register() {
        try {
            if (client == null) {
                client = EtcdClients.build(etcd);
            }
            long lease =
                    client.getLeaseClient()
                            .grant(TTL_SECONDS)
                            .get(timeoutMillis(), TimeUnit.MILLISECONDS)
                            .getID();
            int claimed = claim(lease);
            if (claimed == 0) {
                client.getLeaseClient().revoke(lease);
                retryLater("peer id " + wantedId + " is held by another instance");
                return;
            }
            leaseId = lease;
            if (id != claimed || failures > 0) {
                log.info(
                        "peer id {} registered in etcd ({}{}), instance {} at {}:{}",
                        claimed,
                        prefix,
                        claimed,
                        instanceId,
                        host,
                        port);
            }
            id = claimed;
            failures = 0;
            retrySeconds = 1;
            schedule(this::keepAlive, KEEP_ALIVE_SECONDS);
        } catch (Exception e) {
            retryLater(describe(e));
        }
    }

    /** Returns the id claimed, or 0 when the wanted one is held by someone else. */
    private int claim(long lease) throws Exception {
        // By id; null for a key whose value is unreadable (the id still counts as taken).
        Map<Integer, Peer> held = new HashMap<>();
        List<KeyValue> kvs =
                client.getKVClient()
                        .get(bytes(prefix), GetOption.builder().isPrefix(true).build())
                        .get(timeoutMillis(), TimeUnit.MILLISECONDS)
                        .getKvs();
        for (KeyValue kv : kvs) {
            String key = kv.getKey().toString(StandardCharsets.UTF_8);
            int n;
            try {
                n = Integer.parseInt(key.substring(prefix.length()));
            } catch (NumberFormatException notAPeerKey) {
                continue;
            }
            try {
                held.put(n, Peer.fromJson(n, kv.getValue().toString(StandardCharsets.UTF_8)));
            } catch (RuntimeException unreadable) {
                held.put(n, null);
            }
        }
        for (int candidate : candidates(held)) {
            Peer holder = held.get(candidate);
            boolean ours =
                    holder != null
                            && holder.instanceId().equals(instanceId)
                            && holder.host().equals(host)
                            && holder.port() == port;
            if (held.containsKey(candidate) && !ours) {
                continue;
            }
            ByteSequence key = bytes(prefix + candidate);
            Cmp guard =
                    ours
                            ? new Cmp(key, Cmp.Op.GREATER, CmpTarget.version(0))
                            : new Cmp(key, Cmp.Op.EQUAL, CmpTarget.version(0));
            String value = new Peer(candidate, instanceId, host, port).toJson();
            boolean won =
                    client.getKVClient()
                            .txn()
                            .If(guard)
                            .Then(
                                    Op.put(
                                            key,
                                            bytes(value),
                                            PutOption.builder().withLeaseId(lease).build()))
                            .commit()
                            .get(timeoutMillis(), TimeUnit.MILLISECONDS)
                            .isSucceeded();
            if (won) {
                return candidate;
            }
        }
        if (wantedId == 0) {
            throw new IllegalStateException("no free peer id (or lost every race for one)");
        }
        return 0;
    }

    /** The ids to try, in order. */
    private List<Integer> candidates(Map<Integer, Peer> held) {
        List<Integer> order = new ArrayList<>();
        if (wantedId != 0) {
            order.add(wantedId);
            return order;
        }
        if (id != 0) {
            order.add(id);
        }
        held.forEach(
                (n, peer) -> {
                    if (peer != null && peer.instanceId().equals(instanceId) && n != id) {
                        order.add(n);
                    }
                });
        for (int n = 1; n <= Peer.MAX_ID && order.size() < 64; n++) {
            if (!held.containsKey(n) && !order.contains(n)) {
                order.add(n);
            }
        }
        return order;
    }

    private void keepAlive() {
        try {
            LeaseKeepAliveResponse r =
                    client.getLeaseClient()
                            .keepAliveOnce(leaseId)
                            .get(timeoutMillis(), TimeUnit.MILLISECONDS);
            if (r.getTTL() <= 0) {
                log.warn("peer id {}: its etcd lease expired; registering again", id);
                register();
                return;
            }
            schedule(this::keepAlive, KEEP_ALIVE_SECONDS);
        } catch (Exception e) {
            // The lease may still be alive (TTL_SECONDS): the next registration tries to keep the
            // same id, and takes it back from the stale key if the lease expired meanwhile.
            retryLater(describe(e));
        }
    }

    private void retryLater(String why) {
        failures++;
        if (failures == 1) {
            log.warn(
                    "peer key in etcd: {}; retrying (cancel forwarding to this instance may fail meanwhile)",
                    why);
        } else {
            log.debug("peer key in etcd: {} (attempt {})", why, failures);
        }
        dropClient();
        schedule(this::register, retrySeconds);
        retrySeconds = Math.min(retrySeconds * 2, MAX_RETRY_SECONDS);
    }

    private void schedule(Runnable task, long seconds) {
        try {
            thread.schedule(task, seconds, TimeUnit.SECONDS);
        } catch (RejectedExecutionException closing) {
            // close() has run
        }
    }

    private void dropClient() {
        if (client != null) {
            try {
                client.close();
            } catch (RuntimeException ignored) {
                // already broken
            }
            client = null;
        }
    }

    /** Revokes the lease, so the key goes now rather than after the TTL, and stops. */
    @Override
    public void close() {
        try {
            thread.submit(
                            () -> {
                                if (client != null && leaseId != 0) {
                                    try {
                                        client.getLeaseClient()
                                                .revoke(leaseId)
                                                .get(timeoutMillis(), TimeUnit.MILLISECONDS);
                                    } catch (Exception e) {
                                        log.debug(
                                                "revoking the peer lease failed: {}", describe(e));
                                    }
                                }
                                dropClient();
                            })
                    .get(timeoutMillis() + 1000, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            log.debug("stopping the peer registration: {}", describe(e));
        }
        thread.shutdownNow();
    }

    private long timeoutMillis() {
        return etcd.requestTimeout().toMillis();
    }

    private static ByteSequence bytes(String s) {
        return ByteSequence.from(s, StandardCharsets.UTF_8);
    }

    private static String describe(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null
                && (t.getMessage() == null || t instanceof ExecutionException)) {
            t = t.getCause();
        }
        return t.getClass().getSimpleName() + (t.getMessage() == null ? "" : ": " + t.getMessage());
    }
}
