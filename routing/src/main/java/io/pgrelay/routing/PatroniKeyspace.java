package io.pgrelay.routing;

import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The keys of one Patroni scope as last seen in etcd, turned into a {@link Topology} on demand.
 *
 * <p>Not thread-safe: owned by the single thread of the source that feeds it. The source feeds it
 * the full prefix after every (re)read and then each watch event, so it must accept any key order
 * and repeated values. Keys it does not route by ({@code config}, {@code initialize}, {@code
 * history}, {@code sync}, ...) are ignored.
 *
 * <p>A member value that is not valid member JSON is logged (once per distinct value) and the
 * member is dropped: routing to an address we could not read is worse than routing around it.
 */
final class PatroniKeyspace {

    private static final Logger log = LoggerFactory.getLogger(PatroniKeyspace.class);

    private static final String LEADER = "leader";
    private static final String MEMBERS = "members/";
    private static final String STATUS = "status";

    /** Patroni < 2.1 kept the leader's WAL position here as a bare number. */
    private static final String LEGACY_OPTIME = "optime/leader";

    private static final String FAILOVER = "failover";
    private static final int DEFAULT_PG_PORT = 5432;

    /** A switchover or failover request from the {@code failover} key. */
    record FailoverRequest(String fromLeader, String toMember, Instant scheduledAt) {
        String describe() {
            return (fromLeader == null ? "(current leader)" : fromLeader)
                    + " → "
                    + (toMember == null ? "(any eligible member)" : toMember)
                    + (scheduledAt == null ? "" : " scheduled at " + scheduledAt);
        }
    }

    private final String prefix;
    private final Map<String, Member> members = new TreeMap<>();
    private final Map<Integer, Peer> peers = new TreeMap<>();

    /**
     * Last unreadable value per member key, so a stuck bad value is logged once, not every loop.
     */
    private final Map<String, String> badValues = new HashMap<>();

    private String leader;
    private long statusOptime = -1;
    private long legacyOptime = -1;
    private FailoverRequest failover;

    /**
     * @param prefix the scope's key prefix, e.g. {@code /service/demo/}
     */
    PatroniKeyspace(String prefix) {
        this.prefix = prefix;
    }

    /**
     * The key prefix Patroni uses for {@code namespace} and {@code scope}: Patroni joins them with
     * '/' and collapses repeated slashes, so {@code service}, {@code /service} and {@code
     * /service/} all mean {@code /service/<scope>/}.
     */
    static String prefixFor(String namespace, String scope) {
        if (scope == null || scope.isBlank()) {
            throw new IllegalArgumentException("Patroni scope must not be empty");
        }
        String ns = namespace == null || namespace.isBlank() ? "service" : namespace;
        return ("/" + ns + "/" + scope + "/").replaceAll("/+", "/");
    }

    String prefix() {
        return prefix;
    }

    /** Forgets everything, before the result of a full re-read is fed in. */
    void clear() {
        members.clear();
        peers.clear();
        leader = null;
        statusOptime = -1;
        legacyOptime = -1;
        failover = null;
    }

    /** Applies a PUT; returns whether the key is one the topology is built from. */
    boolean put(String key, String value) {
        String name = relative(key);
        if (name == null) {
            return false;
        }
        if (name.equals(LEADER)) {
            String trimmed = value.trim();
            leader = trimmed.isEmpty() ? null : trimmed;
            return true;
        }
        if (name.startsWith(MEMBERS)) {
            String memberName = name.substring(MEMBERS.length());
            if (memberName.isEmpty() || memberName.indexOf('/') >= 0) {
                return false;
            }
            try {
                members.put(memberName, parseMember(memberName, value));
                badValues.remove(key);
            } catch (RuntimeException e) {
                if (!value.equals(badValues.put(key, value))) {
                    log.warn(
                            "ignoring member {}: unreadable value in {}: {}",
                            memberName,
                            key,
                            e.getMessage());
                }
                members.remove(memberName);
            }
            return true;
        }
        if (name.equals(STATUS)) {
            statusOptime = parseStatusOptime(key, value);
            return true;
        }
        if (name.startsWith(Peer.KEY_SEGMENT)) {
            int id = peerId(name);
            if (id == 0) {
                return false;
            }
            try {
                peers.put(id, Peer.fromJson(id, value));
                badValues.remove(key);
            } catch (RuntimeException e) {
                if (!value.equals(badValues.put(key, value))) {
                    log.warn(
                            "ignoring pgrelay peer {}: unreadable value in {}: {}",
                            id,
                            key,
                            e.getMessage());
                }
                peers.remove(id);
            }
            return true;
        }
        if (name.equals(LEGACY_OPTIME)) {
            legacyOptime = parseLong(value.trim(), -1);
            return true;
        }
        if (name.equals(FAILOVER)) {
            failover = parseFailover(key, value);
            return true;
        }
        return false;
    }

    /** Applies a DELETE; returns whether the key is one the topology is built from. */
    boolean delete(String key) {
        String name = relative(key);
        if (name == null) {
            return false;
        }
        if (name.equals(LEADER)) {
            leader = null;
            return true;
        }
        if (name.startsWith(MEMBERS)) {
            badValues.remove(key);
            members.remove(name.substring(MEMBERS.length()));
            return true;
        }
        if (name.equals(STATUS)) {
            statusOptime = -1;
            return true;
        }
        if (name.startsWith(Peer.KEY_SEGMENT)) {
            badValues.remove(key);
            return peers.remove(peerId(name)) != null;
        }
        if (name.equals(LEGACY_OPTIME)) {
            legacyOptime = -1;
            return true;
        }
        if (name.equals(FAILOVER)) {
            failover = null;
            return true;
        }
        return false;
    }

    Optional<FailoverRequest> failover() {
        return Optional.ofNullable(failover);
    }

    /**
     * The topology these keys describe at {@code now}. A failover request scheduled for later does
     * not count as pending yet: Patroni acts on it only at that time, and holding writes for hours
     * would be an outage of our own making. The source re-evaluates at that time.
     */
    Topology toTopology(boolean connected, Instant lastChange, long revision, Instant now) {
        boolean pending =
                failover != null
                        && (failover.scheduledAt() == null || !failover.scheduledAt().isAfter(now));
        long optime = Math.max(statusOptime, legacyOptime);
        return new Topology(
                members, leader, optime, pending, connected, lastChange, revision, peers);
    }

    /** The id in {@code pgrelay/peers/<id>}, or 0 when the key is not one. */
    private static int peerId(String name) {
        String id = name.substring(Peer.KEY_SEGMENT.length());
        if (id.isEmpty() || id.length() > 5 || !id.chars().allMatch(Character::isDigit)) {
            return 0;
        }
        int n = Integer.parseInt(id);
        return n >= 1 && n <= Peer.MAX_ID ? n : 0;
    }

    private String relative(String key) {
        return key.startsWith(prefix) ? key.substring(prefix.length()) : null;
    }

    static Member parseMember(String name, String value) {
        Map<String, Object> json = Json.parseObject(value);
        Object connUrl = json.get("conn_url");
        if (!(connUrl instanceof String url) || url.isBlank()) {
            throw new IllegalArgumentException("no conn_url");
        }
        Backend backend = backendFromConnUrl(url);
        Map<?, ?> tags = json.get("tags") instanceof Map<?, ?> t ? t : Map.of();
        return new Member(
                name,
                backend,
                asString(json.get("role")),
                asString(json.get("state")),
                asLong(json.get("timeline")),
                asLong(json.get("xlog_location")),
                truthy(tags.get("noloadbalance")),
                truthy(tags.get("nofailover")));
    }

    /**
     * Host and port from a libpq URI such as {@code postgres://127.0.0.1:15432/postgres} (user
     * info, path and query ignored; port 5432 when absent; IPv6 in brackets).
     */
    static Backend backendFromConnUrl(String url) {
        int scheme = url.indexOf("://");
        if (scheme < 0) {
            throw new IllegalArgumentException("conn_url '" + url + "' is not a postgres:// URI");
        }
        String rest = url.substring(scheme + 3);
        int end = rest.length();
        for (char stop : new char[] {'/', '?'}) {
            int i = rest.indexOf(stop);
            if (i >= 0 && i < end) {
                end = i;
            }
        }
        String authority = rest.substring(0, end);
        int at = authority.lastIndexOf('@');
        if (at >= 0) {
            authority = authority.substring(at + 1);
        }
        if (authority.indexOf(',') >= 0) {
            throw new IllegalArgumentException("conn_url '" + url + "' names several hosts");
        }
        boolean hasPort =
                authority.startsWith("[")
                        ? authority.lastIndexOf(']') < authority.lastIndexOf(':')
                        : authority.lastIndexOf(':') >= 0;
        return Backend.parse(hasPort ? authority : authority + ":" + DEFAULT_PG_PORT);
    }

    private static long parseStatusOptime(String key, String value) {
        try {
            return asLong(Json.parseObject(value).get("optime"));
        } catch (RuntimeException e) {
            log.warn("ignoring unreadable {}: {}", key, e.getMessage());
            return -1;
        }
    }

    /**
     * Empty value or {@code {}} means no request. Anything else that is not readable still counts
     * as a request: holding writes briefly is safer than writing into a shutdown.
     */
    private static FailoverRequest parseFailover(String key, String value) {
        String trimmed = value.trim();
        if (trimmed.isEmpty()) {
            return null;
        }
        Map<String, Object> json;
        try {
            json = Json.parseObject(trimmed);
        } catch (RuntimeException e) {
            log.warn("unreadable {} treated as a pending switchover: {}", key, e.getMessage());
            return new FailoverRequest(null, null, null);
        }
        if (json.isEmpty()) {
            return null;
        }
        Instant scheduledAt = null;
        if (json.get("scheduled_at") instanceof String at && !at.isBlank()) {
            try {
                scheduledAt = OffsetDateTime.parse(at.trim().replace(' ', 'T')).toInstant();
            } catch (DateTimeParseException e) {
                log.warn(
                        "unreadable scheduled_at '{}' in {}: treating the switchover as immediate",
                        at,
                        key);
            }
        }
        String from = asString(json.get("leader"));
        String to = asString(json.get("member"));
        return new FailoverRequest(
                from.isEmpty() ? null : from, to.isEmpty() ? null : to, scheduledAt);
    }

    private static String asString(Object value) {
        return value == null ? "" : value.toString();
    }

    private static long asLong(Object value) {
        if (value instanceof Long l) {
            return l;
        }
        if (value instanceof Number n) {
            return n.longValue();
        }
        if (value instanceof String s) {
            return parseLong(s.trim(), -1);
        }
        return -1;
    }

    private static long parseLong(String s, long fallback) {
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    /** Patroni's own notion of a true tag value (it accepts YAML-ish strings too). */
    private static boolean truthy(Object value) {
        if (value instanceof Boolean b) {
            return b;
        }
        if (value instanceof Number n) {
            return n.doubleValue() != 0;
        }
        if (value instanceof String s) {
            String v = s.trim().toLowerCase(Locale.ROOT);
            return v.equals("true")
                    || v.equals("on")
                    || v.equals("yes")
                    || v.equals("y")
                    || v.equals("1");
        }
        return false;
    }
}
