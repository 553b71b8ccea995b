package io.pgrelay.routing;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * One human-readable line per routing-relevant difference between two topologies: the leader,
 * members joining or leaving, role/state/address/tag changes, switchover requests. WAL position
 * updates (every {@code loop_wait} per member) are deliberately not reported.
 */
final class TopologyChanges {

    private TopologyChanges() {}

    /**
     * @param how what produced {@code after}: e.g. "watch" or "re-read after reconnect"
     * @param switchoverDetail description of the failover request, when one is pending
     */
    static List<String> describe(
            Topology before, Topology after, String how, String switchoverDetail) {
        List<String> lines = new ArrayList<>();
        if (!Objects.equals(before.leader(), after.leader())) {
            lines.add(
                    "leader "
                            + name(before.leader())
                            + " → "
                            + name(after.leader())
                            + " ("
                            + leaderChangeReason(before, after, how)
                            + ")");
        }
        for (Member old : before.members().values()) {
            Member now = after.members().get(old.name());
            if (now == null) {
                lines.add(
                        "member "
                                + old.name()
                                + " left (was "
                                + old.role()
                                + "/"
                                + old.state()
                                + " at "
                                + old.backend()
                                + ")");
                continue;
            }
            if (!old.role().equals(now.role())) {
                lines.add("member " + old.name() + " role " + old.role() + " → " + now.role());
            }
            if (!old.state().equals(now.state())) {
                lines.add("member " + old.name() + " state " + old.state() + " → " + now.state());
            }
            if (!old.backend().equals(now.backend())) {
                lines.add(
                        "member "
                                + old.name()
                                + " address "
                                + old.backend()
                                + " → "
                                + now.backend());
            }
            if (old.noLoadBalance() != now.noLoadBalance()) {
                lines.add(
                        "member "
                                + old.name()
                                + " noloadbalance "
                                + old.noLoadBalance()
                                + " → "
                                + now.noLoadBalance());
            }
            if (old.noFailover() != now.noFailover()) {
                lines.add(
                        "member "
                                + old.name()
                                + " nofailover "
                                + old.noFailover()
                                + " → "
                                + now.noFailover());
            }
        }
        for (Member now : after.members().values()) {
            if (!before.members().containsKey(now.name())) {
                lines.add(
                        "member "
                                + now.name()
                                + " joined ("
                                + now.role()
                                + "/"
                                + now.state()
                                + " at "
                                + now.backend()
                                + ")");
            }
        }
        before.peers()
                .forEach(
                        (id, old) -> {
                            Peer now = after.peers().get(id);
                            if (!old.equals(now)) {
                                lines.add(
                                        "pgrelay peer " + id + " (" + old.instanceId() + ") left");
                            }
                        });
        after.peers()
                .forEach(
                        (id, now) -> {
                            if (!now.equals(before.peers().get(id))) {
                                lines.add(
                                        "pgrelay peer "
                                                + id
                                                + " ("
                                                + now.instanceId()
                                                + ") at "
                                                + now.host()
                                                + ":"
                                                + now.port());
                            }
                        });
        if (!before.switchoverPending() && after.switchoverPending()) {
            lines.add(
                    "switchover announced: "
                            + (switchoverDetail == null ? "?" : switchoverDetail)
                            + "; writes are held until the new leader is confirmed");
        } else if (before.switchoverPending() && !after.switchoverPending()) {
            // the leader may have changed several events earlier: name the outcome, not a delta
            lines.add("switchover request cleared; leader is " + name(after.leader()));
        }
        return lines;
    }

    private static String leaderChangeReason(Topology before, Topology after, String how) {
        String oldLeader = before.leader();
        String newLeader = after.leader();
        if (newLeader == null) {
            if (before.switchoverPending() || after.switchoverPending()) {
                return "released for a switchover, " + how;
            }
            if (!after.members().containsKey(oldLeader)
                    && before.members().containsKey(oldLeader)) {
                return "leader and member keys gone: lease expired, node died or lost etcd, " + how;
            }
            return "leader key removed, " + how;
        }
        if (oldLeader == null) {
            return (before.switchoverPending() ? "switchover: " : "")
                    + newLeader
                    + " took the leader key, "
                    + how;
        }
        return "leader key changed hands directly, " + how;
    }

    private static String name(String leader) {
        return leader == null ? "(none)" : leader;
    }
}
