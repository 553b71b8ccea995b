package io.pgrelay.testkit;

import io.pgrelay.routing.EtcdProcess;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A real etcd cluster with one member per {@link TestNetwork} host, for tests that black-hole or
 * partition single members: each member listens on its host's bridge address (client port {@value
 * #CLIENT_PORT}, peer port {@value #PEER_PORT}; every host has a network stack of its own, so the
 * ports never collide). Data and logs live under a temp dir ({@code <tmp>/pgrelay-etcd-cluster-*},
 * {@code eN/data}, {@code eN/etcd.log}); {@link #close()} kills the members and deletes it, and the
 * network kills them too when it closes.
 */
public final class EtcdCluster implements AutoCloseable {

    public static final int CLIENT_PORT = 2379;
    public static final int PEER_PORT = 2380;
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(40);

    private final List<TestNetwork.Host> hosts;
    private final Path dir;
    private final List<HostProcess> members = new ArrayList<>();

    private EtcdCluster(List<TestNetwork.Host> hosts, Path dir) {
        this.hosts = List.copyOf(hosts);
        this.dir = dir;
    }

    /** Starts one member per host (all at once: they need each other for a quorum). */
    public static EtcdCluster start(List<TestNetwork.Host> hosts) {
        Path dir;
        try {
            dir = Files.createTempDirectory(PgServer.tempRoot(), "pgrelay-etcd-cluster-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        EtcdCluster cluster = new EtcdCluster(hosts, dir);
        try {
            String initial =
                    hosts.stream()
                            .map(h -> name(h) + "=" + peerUrl(h))
                            .collect(Collectors.joining(","));
            String token = dir.getFileName().toString();
            for (TestNetwork.Host h : hosts) {
                Path memberDir = dir.resolve(name(h));
                Files.createDirectories(memberDir);
                cluster.members.add(
                        h.spawn(
                                Map.of(),
                                "etcd",
                                "--name",
                                name(h),
                                "--data-dir",
                                memberDir.resolve("data").toString(),
                                "--listen-client-urls",
                                clientUrl(h),
                                "--advertise-client-urls",
                                clientUrl(h),
                                "--listen-peer-urls",
                                peerUrl(h),
                                "--initial-advertise-peer-urls",
                                peerUrl(h),
                                "--initial-cluster",
                                initial,
                                "--initial-cluster-token",
                                token,
                                "--initial-cluster-state",
                                "new"));
            }
            for (TestNetwork.Host h : hosts) {
                try {
                    Await.until(
                            "etcd member " + name(h) + " healthy", READY_TIMEOUT, () -> healthy(h));
                } catch (AssertionError e) {
                    throw new AssertionError(e.getMessage() + "\n" + cluster.logTails(), e);
                }
            }
            return cluster;
        } catch (IOException e) {
            cluster.close();
            throw new UncheckedIOException(e);
        } catch (RuntimeException | Error e) {
            cluster.close();
            throw e;
        }
    }

    /** {@code http://<address>:2379} of every member, in host order. */
    public List<String> endpoints() {
        return hosts.stream().map(EtcdCluster::clientUrl).toList();
    }

    /** {@code <address>:2379,...}: the form Patroni's {@code etcd3.hosts} takes. */
    public String hostPorts() {
        return hosts.stream()
                .map(h -> h.address() + ":" + CLIENT_PORT)
                .collect(Collectors.joining(","));
    }

    public List<TestNetwork.Host> hosts() {
        return hosts;
    }

    /** The value of {@code key} (linearizable read through any reachable member), or null. */
    public String get(String key) {
        String out = etcdctl("get", "--print-value-only", key).strip();
        return out.isEmpty() ? null : out;
    }

    /** True if the cluster answers a linearizable read (it has a quorum the test JVM reaches). */
    public boolean serving() {
        try {
            etcdctl("get", "/pgrelay-test-probe");
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }

    /**
     * Runs {@code etcdctl} inside each member's host in turn, against that member, until one
     * answers (so it works while the test's own namespace is partitioned from etcd, and while
     * single members are black-holed); returns its stdout, throws when none answers.
     */
    public String etcdctl(String... args) {
        Proc.Result last = null;
        for (TestNetwork.Host h : hosts) {
            List<String> cmd =
                    new ArrayList<>(
                            List.of(
                                    "etcdctl",
                                    "--endpoints=" + clientUrl(h),
                                    "--dial-timeout=1s",
                                    "--command-timeout=2s"));
            cmd.addAll(List.of(args));
            last = h.proc(cmd).env("ETCDCTL_API", "3").timeout(Duration.ofSeconds(10)).run();
            if (last.ok()) {
                return last.stdout();
            }
        }
        throw new IllegalStateException(
                "no etcd member answered etcdctl " + List.of(args) + ": " + last.stderr());
    }

    /** The last lines of every member's log. */
    public String logTails() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < members.size(); i++) {
            HostProcess p = members.get(i);
            sb.append("--- etcd ")
                    .append(name(hosts.get(i)))
                    .append(" ---\n")
                    .append(Proc.tail(p.stdout() + p.stderr(), 8))
                    .append('\n');
        }
        return sb.toString();
    }

    @Override
    public void close() {
        for (HostProcess p : members) {
            p.close();
        }
        Proc.of("rm", "-rf", dir.toString()).timeout(Duration.ofSeconds(30)).run();
    }

    private static String name(TestNetwork.Host h) {
        return h.name();
    }

    private static String clientUrl(TestNetwork.Host h) {
        return "http://" + h.address() + ":" + CLIENT_PORT;
    }

    private static String peerUrl(TestNetwork.Host h) {
        return "http://" + h.address() + ":" + PEER_PORT;
    }

    private static boolean healthy(TestNetwork.Host h) {
        return EtcdProcess.healthy(clientUrl(h));
    }
}
