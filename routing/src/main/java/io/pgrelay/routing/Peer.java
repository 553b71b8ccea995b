package io.pgrelay.routing;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Another pgrelay instance in front of the same cluster, as it announces itself in etcd: where it
 * takes CancelRequests for the cancel keys it issued (their process IDs carry its {@code id}).
 *
 * @param id the peer id (1..{@link #MAX_ID}) in the cancel keys it issues
 * @param instanceId its instance id (by default its host name), for people reading SHOW PEERS
 * @param host the address it takes CancelRequests on
 * @param port its write port
 */
public record Peer(int id, String instanceId, String host, int port) {

    /** PgBouncer's range for peer_id; 14 bits of a cancel key's process ID. */
    public static final int MAX_ID = 16383;

    /** The key segment under the scope's prefix: {@code <namespace><scope>/pgrelay/peers/<id>}. */
    public static final String KEY_SEGMENT = "pgrelay/peers/";

    public Peer {
        if (id < 1 || id > MAX_ID) {
            throw new IllegalArgumentException("peer id " + id + " (expected: 1.." + MAX_ID + ")");
        }
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException("peer " + id + ": no host");
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("peer " + id + ": port " + port);
        }
        instanceId = instanceId == null ? "" : instanceId;
    }

    /** The value kept in etcd. */
    public String toJson() {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("instance_id", instanceId);
        json.put("host", host);
        json.put("port", port);
        return Json.write(json);
    }

    static Peer fromJson(int id, String value) {
        Map<String, Object> json = Json.parseObject(value);
        Object port = json.get("port");
        if (!(port instanceof Number n)) {
            throw new IllegalArgumentException("no port");
        }
        return new Peer(
                id,
                json.get("instance_id") instanceof String s ? s : "",
                json.get("host") instanceof String h ? h : null,
                n.intValue());
    }
}
