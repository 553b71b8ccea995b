package io.pgrelay.proxy;

import io.pgrelay.admin.AdminView;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.health.Health;
import io.pgrelay.health.StatusPage;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Member;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.routing.Role;
import io.pgrelay.routing.Topology;
import java.util.ArrayList;
import java.util.List;

/**
 * What pgrelay says about itself to those watching it: readiness (/ready), the topology (SHOW
 * TOPOLOGY and the status page) and the status page (/).
 */
final class ProxyStatus {

    private final RelayServices services;

    ProxyStatus(RelayServices services) {
        this.services = services;
    }

    /**
     * Ready while not shutting down, the write port listens and writes have a primary to go to. An
     * unreachable etcd does not make it unready (the last topology still routes) but is said in the
     * body.
     */
    Health readiness(boolean writePortListening) {
        if (services.isShuttingDown()) {
            return Health.shuttingDown();
        }
        List<String> unmet = new ArrayList<>();
        if (!writePortListening) {
            unmet.add("write port not listening");
        }
        if (services.router().route(Role.PRIMARY).isEmpty()) {
            unmet.add("no writable primary: " + services.noPrimaryReason());
        }
        List<String> notes = new ArrayList<>();
        PatroniRouter patroni = services.patroni();
        if (patroni != null && !patroni.topology().sourceConnected()) {
            notes.add(
                    "etcd unreachable since "
                            + patroni.topology().lastChange()
                            + ": routing on the last known topology");
        }
        return Health.readiness(unmet, notes);
    }

    /** SHOW TOPOLOGY and the status page: the cluster members, or the configured backends. */
    List<AdminView.TopologyRow> topologyRows() {
        ProxyConfig config = services.config();
        PatroniRouter patroni = services.patroni();
        List<AdminView.TopologyRow> rows = new ArrayList<>();
        if (patroni != null) {
            Topology t = patroni.topology();
            List<Backend> eligible = patroni.replicas();
            for (Member m : t.members().values()) {
                boolean leader = m.name().equals(t.leader());
                rows.add(
                        new AdminView.TopologyRow(
                                m.name(),
                                m.backend().host(),
                                m.backend().port(),
                                m.role(),
                                m.state(),
                                leader ? 0L : t.lagBytes(m),
                                eligible.contains(m.backend()),
                                leader,
                                "etcd "
                                        + config.patroniScope()
                                        + (t.switchoverPending() ? " (switchover pending)" : ""),
                                t.sourceConnected(),
                                t.lastChange()));
            }
            rows.sort((a, b) -> a.member().compareTo(b.member()));
            return rows;
        }
        rows.add(
                new AdminView.TopologyRow(
                        "primary",
                        config.primary().host(),
                        config.primary().port(),
                        "primary",
                        "configured",
                        null,
                        config.replicas().isEmpty(),
                        true,
                        "static",
                        true,
                        null));
        int i = 0;
        for (Backend r : config.replicas()) {
            rows.add(
                    new AdminView.TopologyRow(
                            "replica" + (++i),
                            r.host(),
                            r.port(),
                            "replica",
                            "configured",
                            null,
                            true,
                            false,
                            "static",
                            true,
                            null));
        }
        return rows;
    }

    /** The HTTP status page: topology, pools, rates and client counts. */
    List<StatusPage.Section> statusPage() {
        ClientRegistry clients = services.clients();
        List<List<String>> topology = new ArrayList<>();
        for (AdminView.TopologyRow t : topologyRows()) {
            topology.add(
                    List.of(
                            t.member(),
                            t.host() + ":" + t.port(),
                            t.role(),
                            t.state(),
                            t.lagBytes() == null ? "" : String.valueOf(t.lagBytes()),
                            t.readEligible() ? "yes" : "no",
                            t.leader() ? "leader" : "",
                            t.source()));
        }
        List<List<String>> poolRows = new ArrayList<>();
        for (AdminView.PoolRow p : services.console().pools()) {
            poolRows.add(
                    List.of(
                            p.database(),
                            p.user(),
                            p.role(),
                            p.backend(),
                            String.valueOf(p.clActive()),
                            String.valueOf(p.clWaiting()),
                            String.valueOf(p.svActive()),
                            String.valueOf(p.svIdle()),
                            String.valueOf(p.svLogin()),
                            String.format("%.3f", p.maxWaitMicros() / 1e6)));
        }
        List<List<String>> statRows = new ArrayList<>();
        for (AdminView.StatsRow s : services.console().stats()) {
            statRows.add(
                    List.of(
                            s.database(),
                            String.valueOf(s.total().xactCount()),
                            String.valueOf(s.total().queryCount()),
                            String.valueOf(s.average().xactCount()),
                            String.valueOf(s.average().queryCount()),
                            String.valueOf(s.average().xactTime()),
                            String.valueOf(s.average().waitTime())));
        }
        ProxyConfig config = services.config();
        int ownId = services.peers().ownId();
        List<List<String>> peerRows = new ArrayList<>();
        for (AdminView.PeerRow p : services.peers().rows()) {
            peerRows.add(
                    List.of(
                            String.valueOf(p.peerId()),
                            p.instanceId(),
                            p.host() + ":" + p.port(),
                            p.source() + (p.self() ? " (this instance)" : ""),
                            String.valueOf(p.cancelsForwarded())));
        }
        return List.of(
                new StatusPage.Section(
                        "Instance",
                        List.of("instance id", "peer id", "advertised host"),
                        List.of(
                                List.of(
                                        config.peers().instanceId(),
                                        ownId == 0 ? "none" : String.valueOf(ownId),
                                        config.peers().advertiseHost()))),
                new StatusPage.Section(
                        "Peers",
                        List.of("peer id", "instance", "address", "source", "cancels forwarded"),
                        peerRows),
                new StatusPage.Section(
                        "Topology",
                        List.of(
                                "member",
                                "address",
                                "role",
                                "state",
                                "lag bytes",
                                "reads",
                                "leader",
                                "source"),
                        topology),
                new StatusPage.Section(
                        "Pools",
                        List.of(
                                "database",
                                "user",
                                "role",
                                "backend",
                                "cl_active",
                                "cl_waiting",
                                "sv_active",
                                "sv_idle",
                                "sv_login",
                                "maxwait s"),
                        poolRows),
                new StatusPage.Section(
                        "Rates (last " + AdminConsole.STATS_PERIOD_SECONDS + " s)",
                        List.of(
                                "database",
                                "xacts",
                                "queries",
                                "xacts/s",
                                "queries/s",
                                "avg xact µs",
                                "avg wait µs"),
                        statRows),
                new StatusPage.Section(
                        "Clients",
                        List.of("active", "waiting", "login", "max_client_conn"),
                        List.of(
                                List.of(
                                        String.valueOf(clients.count("active")),
                                        String.valueOf(clients.count("waiting")),
                                        String.valueOf(clients.count("login")),
                                        String.valueOf(services.config().maxClientConn())))));
    }
}
