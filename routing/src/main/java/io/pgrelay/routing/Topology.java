package io.pgrelay.routing;

import java.time.Instant;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;

/**
 * An immutable picture of one Patroni cluster as read from its DCS.
 *
 * <p>While the DCS is unreachable a source keeps publishing the last picture it had with {@code
 * sourceConnected=false}: the members were there a moment ago and are the best guess, but nothing
 * new will be learned (not even that the leader died) until the source reconnects.
 *
 * @param members by member name, iterated in name order
 * @param leader the member name in the {@code leader} key; null when no one holds it
 * @param optime the leader's WAL position from the {@code status} key; -1 if unknown
 * @param switchoverPending a non-empty {@code failover} key: a switchover/failover was requested
 *     and the current leader is about to shut down
 * @param sourceConnected whether the source is currently following the DCS
 * @param lastChange when this picture (apart from {@code revision}) last changed
 * @param revision the etcd revision this picture reflects (0 for hand-built ones)
 * @param peers the pgrelay instances announced under the scope, by peer id
 */
public record Topology(
        Map<String, Member> members,
        String leader,
        long optime,
        boolean switchoverPending,
        boolean sourceConnected,
        Instant lastChange,
        long revision,
        Map<Integer, Peer> peers) {

    private static final Topology EMPTY =
            new Topology(Map.of(), null, -1, false, false, Instant.EPOCH, 0, Map.of());

    /** Without peers (static topologies, tests). */
    public Topology(
            Map<String, Member> members,
            String leader,
            long optime,
            boolean switchoverPending,
            boolean sourceConnected,
            Instant lastChange,
            long revision) {
        this(
                members,
                leader,
                optime,
                switchoverPending,
                sourceConnected,
                lastChange,
                revision,
                Map.of());
    }

    public Topology {
        Objects.requireNonNull(lastChange, "lastChange");
        // sorted, so every consumer sees members in one stable order (round robin, logs, tests)
        members =
                Collections.unmodifiableMap(
                        new TreeMap<>(Objects.requireNonNull(members, "members")));
        peers = Collections.unmodifiableMap(new TreeMap<>(Objects.requireNonNull(peers, "peers")));
    }

    /** No members, no leader, never connected. */
    public static Topology empty() {
        return EMPTY;
    }

    /** The member named by the leader key, if there is one and its member key is known. */
    public Optional<Member> leaderMember() {
        return leader == null ? Optional.empty() : Optional.ofNullable(members.get(leader));
    }

    /**
     * How far {@code member} is behind the leader, in bytes: {@code optime − xlog_location}, at
     * least 0. When the {@code status} optime is unknown the leader's own {@code xlog_location} is
     * the reference. {@link Long#MAX_VALUE} when either side is unknown, so a lag filter excludes
     * members it cannot judge.
     */
    public long lagBytes(Member member) {
        long reference = optime;
        if (reference < 0) {
            reference = leaderMember().map(Member::xlogLocation).orElse(-1L);
        }
        if (reference < 0 || member.xlogLocation() < 0) {
            return Long.MAX_VALUE;
        }
        return Math.max(0, reference - member.xlogLocation());
    }

    /** Same cluster picture, ignoring {@code lastChange} and {@code revision}. */
    public boolean sameStateAs(Topology other) {
        return other != null
                && members.equals(other.members)
                && Objects.equals(leader, other.leader)
                && optime == other.optime
                && switchoverPending == other.switchoverPending
                && sourceConnected == other.sourceConnected
                && peers.equals(other.peers);
    }

    public Topology withSourceConnected(boolean connected, Instant now) {
        return connected == sourceConnected
                ? this
                : new Topology(
                        members,
                        leader,
                        optime,
                        switchoverPending,
                        connected,
                        now,
                        revision,
                        peers);
    }

    @Override
    public String toString() {
        StringBuilder sb =
                new StringBuilder("Topology{leader=")
                        .append(leader)
                        .append(", optime=")
                        .append(optime)
                        .append(switchoverPending ? ", switchover pending" : "")
                        .append(sourceConnected ? "" : ", DISCONNECTED")
                        .append(", rev=")
                        .append(revision)
                        .append(", members=[");
        boolean first = true;
        for (Member m : members.values()) {
            if (!first) {
                sb.append(", ");
            }
            first = false;
            sb.append(m.name())
                    .append('@')
                    .append(m.backend())
                    .append(' ')
                    .append(m.role())
                    .append('/')
                    .append(m.state())
                    .append(" lsn=")
                    .append(m.xlogLocation());
            if (m.noLoadBalance()) {
                sb.append(" noloadbalance");
            }
        }
        return sb.append("]}").toString();
    }
}
