package io.pgrelay.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Peer;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * Several pgrelay instances behind one address (a Swarm VIP, a Kubernetes Service): the cancel keys
 * an instance issues carry its peer id, and a CancelRequest that reaches another instance is
 * forwarded to the issuer, found in {@code staticPeers} (PgBouncer's {@code [peers]}) or in etcd.
 *
 * @param instanceId how this instance is named in SHOW CONFIG, SHOW PEERS and the status page
 * @param peerId this instance's id (1..16383); 0 = take a free one from etcd under Patroni routing,
 *     or, without etcd, issue keys that are never forwarded
 * @param advertiseHost where the other instances send CancelRequests for this one's keys
 * @param staticPeers configured peers by id (this instance's own entry included or not)
 */
public record PeerSettings(
        String instanceId, int peerId, String advertiseHost, Map<Integer, Backend> staticPeers) {

    public PeerSettings {
        staticPeers = Collections.unmodifiableMap(new TreeMap<>(staticPeers));
    }

    static PeerSettings from(Config c) {
        int peerId = c.getInt("peers.peer_id");
        if (peerId < 0 || peerId > Peer.MAX_ID) {
            throw new ConfigException.BadValue(
                    "pgrelay.peers.peer_id", peerId + " (expected: 0.." + Peer.MAX_ID + ")");
        }
        Map<Integer, Backend> peers = new TreeMap<>();
        for (String entry : c.getStringList("peers.static_peers")) {
            int eq = entry.indexOf('=');
            String bad = "'" + entry + "' (expected: ID=HOST:PORT, ID 1.." + Peer.MAX_ID + ")";
            if (eq < 1) {
                throw new ConfigException.BadValue("pgrelay.peers.static_peers", bad);
            }
            int id;
            Backend address;
            try {
                id = Integer.parseInt(entry.substring(0, eq).trim());
                address = Backend.parse(entry.substring(eq + 1).trim());
            } catch (IllegalArgumentException e) {
                throw new ConfigException.BadValue("pgrelay.peers.static_peers", bad);
            }
            if (id < 1 || id > Peer.MAX_ID || peers.put(id, address) != null) {
                throw new ConfigException.BadValue(
                        "pgrelay.peers.static_peers",
                        bad + (id >= 1 && id <= Peer.MAX_ID ? ": id " + id + " twice" : ""));
            }
        }
        if (!peers.isEmpty() && peerId == 0) {
            throw new ConfigException.BadValue(
                    "pgrelay.peers.peer_id",
                    "0 with peers.static_peers set (expected: this instance's id in that list)");
        }
        String instanceId = c.getString("runtime.instance_id").trim();
        String advertise = c.getString("peers.advertise_host").trim();
        return new PeerSettings(
                instanceId.isEmpty() ? localHostName() : instanceId,
                peerId,
                advertise.isEmpty() ? localAddress() : advertise,
                peers);
    }

    /** The host name (a container's or pod's own name), as the instance id by default. */
    private static String localHostName() {
        String env = System.getenv("HOSTNAME");
        if (env != null && !env.isBlank()) {
            return env.trim();
        }
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "pgrelay";
        }
    }

    /**
     * The address this host's name resolves to: in a container or pod, its own address on the
     * network the other instances share (Docker and Kubernetes write it into /etc/hosts).
     */
    private static String localAddress() {
        try {
            return InetAddress.getLocalHost().getHostAddress();
        } catch (UnknownHostException e) {
            return "127.0.0.1";
        }
    }
}
