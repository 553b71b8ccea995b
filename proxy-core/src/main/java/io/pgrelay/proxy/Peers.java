package io.pgrelay.proxy;

import io.pgrelay.admin.AdminView;
import io.pgrelay.config.PeerSettings;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.EtcdPeerRegistration;
import io.pgrelay.routing.EtcdTopologySource;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.routing.Peer;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This instance's peer id and the other instances a CancelRequest may belong to: those in {@code
 * peers.static_peers} and those announced in etcd under Patroni routing, where this instance
 * announces itself too ({@link EtcdPeerRegistration}).
 */
final class Peers {

    private static final Logger log = LoggerFactory.getLogger(Peers.class);

    private final RelayServices services;
    private final Map<Integer, LongAdder> forwarded = new ConcurrentHashMap<>();
    private volatile EtcdPeerRegistration registration;

    Peers(RelayServices services) {
        this.services = services;
    }

    /** Announces this instance in etcd (Patroni routing), reachable on {@code writePort}. */
    void start(int writePort) {
        ProxyConfig config = services.config();
        PeerSettings settings = config.peers();
        if (!config.routingSource().equals("patroni")) {
            if (settings.peerId() != 0) {
                log.info(
                        "peer id {} (instance {}), {} static peers",
                        settings.peerId(),
                        settings.instanceId(),
                        settings.staticPeers().size());
            }
            return;
        }
        warnIfLoopback(settings.advertiseHost());
        EtcdPeerRegistration r =
                new EtcdPeerRegistration(
                        EtcdTopologySource.Settings.of(
                                        config.etcdEndpoints(),
                                        config.patroniNamespace(),
                                        config.patroniScope())
                                .withRequestTimeout(config.etcdRequestTimeout()),
                        settings.peerId(),
                        settings.instanceId(),
                        settings.advertiseHost(),
                        writePort);
        registration = r;
        r.start();
    }

    /**
     * Instances on other hosts cannot reach a loopback address: a host whose name resolves to
     * 127.0.1.1 (Debian's default) needs peers.advertise_host.
     */
    private static void warnIfLoopback(String host) {
        try {
            if (InetAddress.getByName(host).isLoopbackAddress()) {
                log.warn(
                        "peers.advertise_host is {}, a loopback address: instances on other hosts"
                                + " cannot forward cancel requests here (set peers.advertise_host)",
                        host);
            }
        } catch (UnknownHostException e) {
            log.warn("peers.advertise_host {} does not resolve here: {}", host, e.getMessage());
        }
    }

    /** Withdraws this instance's etcd key. */
    void close() {
        EtcdPeerRegistration r = registration;
        if (r != null) {
            registration = null;
            r.close();
        }
    }

    /** The id in the cancel keys issued now: configured, or claimed in etcd; 0 = none yet. */
    int ownId() {
        int configured = services.config().peers().peerId();
        if (configured != 0) {
            return configured;
        }
        EtcdPeerRegistration r = registration;
        return r == null ? 0 : r.id();
    }

    /**
     * Sends a CancelRequest this instance has no session for to the peer whose id its key carries;
     * drops it when that peer is this instance or unknown, as PostgreSQL drops what it cannot
     * match.
     */
    void forward(int processId, int secretKey) {
        int id = CancelKeys.peerOf(processId);
        if (id == 0 || id == ownId()) {
            return;
        }
        Backend address = address(id);
        if (address == null) {
            log.debug("cancel request for peer {}, which is not known: dropped", id);
            return;
        }
        forwarded.computeIfAbsent(id, k -> new LongAdder()).increment();
        services.sendCancel(address, processId, secretKey);
    }

    private Backend address(int id) {
        Backend configured = services.config().peers().staticPeers().get(id);
        if (configured != null) {
            return configured;
        }
        Peer announced = announced().get(id);
        return announced == null ? null : new Backend(announced.host(), announced.port());
    }

    private Map<Integer, Peer> announced() {
        PatroniRouter patroni = services.patroni();
        return patroni == null ? Map.of() : patroni.topology().peers();
    }

    /** SHOW PEERS and the status page: every known peer, this instance included. */
    List<AdminView.PeerRow> rows() {
        PeerSettings settings = services.config().peers();
        int own = ownId();
        Map<Integer, AdminView.PeerRow> rows = new TreeMap<>();
        settings.staticPeers()
                .forEach(
                        (id, address) ->
                                rows.put(
                                        id,
                                        row(
                                                id,
                                                id == own ? settings.instanceId() : "",
                                                address.host(),
                                                address.port(),
                                                "static",
                                                own)));
        announced()
                .forEach(
                        (id, peer) ->
                                rows.putIfAbsent(
                                        id,
                                        row(
                                                id,
                                                peer.instanceId(),
                                                peer.host(),
                                                peer.port(),
                                                "etcd",
                                                own)));
        if (own != 0 && !rows.containsKey(own)) {
            rows.put(
                    own,
                    row(
                            own,
                            settings.instanceId(),
                            settings.advertiseHost(),
                            services.config().writePort(),
                            registration == null ? "configured" : "etcd (not seen yet)",
                            own));
        }
        return new ArrayList<>(rows.values());
    }

    private AdminView.PeerRow row(
            int id, String instanceId, String host, int port, String source, int own) {
        LongAdder n = forwarded.get(id);
        return new AdminView.PeerRow(
                id, host, port, instanceId, source, id == own, n == null ? 0 : n.sum());
    }
}
