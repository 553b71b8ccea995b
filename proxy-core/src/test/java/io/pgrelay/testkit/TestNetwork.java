package io.pgrelay.testkit;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;

/**
 * Simulated hosts on this machine for network-fault tests: one Linux network namespace per host,
 * each with a veth pair into a bridge in the root namespace. The root namespace (where the test
 * JVM, and an in-JVM pgrelay, run) is on the bridge too, at {@link #rootAddress()}.
 *
 * <pre>{@code
 * TestNetwork.assumeAvailable();
 * try (TestNetwork net = TestNetwork.create("client", "other")) {
 *     Host client = net.host("client");
 *     HostProcess psql = client.spawn(Map.of("PGPASSWORD", "x"), "psql", "-h", net.rootAddress(), ...);
 *     net.linkDown(client);   // or blackHole(client), partition(client, other), loss(client, 30)
 * }
 * }</pre>
 *
 * <p>Layout: subnet {@code 10.231.N.0/24} (N is the first number no interface of this machine uses
 * yet); the bridge has {@code .1} ({@link #rootAddress()}), host {@code i} (in creation order) has
 * {@code .(10+i)} on its {@code eth0}, and its loopback is up. Commands run in a host with {@code
 * ip netns exec} ({@link Host#proc}, {@link Host#spawn}); to run one as the PostgreSQL OS user, put
 * {@code runuser -u postgres --} inside, after {@code ip netns exec}.
 *
 * <p>Names: everything this class creates (namespaces, interfaces in the root namespace, nftables
 * tables) is called {@code pgrt<owner pid, base 36, 5 chars><network number><...>} (at most 15
 * characters). When a network is created, things left behind by a JVM that is gone (its pid is not
 * alive) are deleted; {@link #close()} and a JVM shutdown hook delete this JVM's.
 *
 * <p>Faults (all of them undone by {@link #heal(Host)} or {@link #healAll()}):
 *
 * <ul>
 *   <li>{@link #blackHole}, {@link #loss}, {@link #dropInbound}, {@link #dropOutbound}, {@link
 *       #partition}: nftables {@code netdev} ingress rules on the two ends of the host's veth (the
 *       host's {@code eth0} for packets to it, the bridge-side end for packets from it). Packets
 *       are dropped silently: no RST, no ICMP, and no error for the sender either (a drop in an
 *       {@code output} hook would fail the sender's write with EPERM). Need {@code nft} (Debian
 *       {@code nftables}); without it these methods abort the test (JUnit assumption).
 *   <li>{@link #linkDown}/{@link #linkUp}: the bridge-side end of the host's veth down (a pulled
 *       cable or a dead switch port): the host sees NO-CARRIER, the bridge no longer forwards to
 *       it.
 *   <li>{@link #delay}: {@code tc qdisc ... netem} on both ends. Needs the kernel's netem qdisc
 *       ({@code CONFIG_NET_SCH_NETEM}); without it the test is aborted (JUnit assumption).
 * </ul>
 *
 * <p>Requirements: root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2; {@link #assumeAvailable()}
 * aborts the calling test with a message saying why when a namespace cannot be created. On a host
 * whose root namespace filters bridged traffic ({@code br_netfilter} with a FORWARD policy of DROP,
 * as Docker sets it), host-to-host traffic may be dropped; host-to-root traffic is not forwarded.
 */
public final class TestNetwork implements AutoCloseable {

    /** Every name this class creates starts with this. */
    public static final String PREFIX = "pgrt";

    private static final Duration CMD_TIMEOUT = Duration.ofSeconds(15);
    private static final Duration FORWARDER_START = Duration.ofSeconds(30); // a JVM each
    private static final String HOST_IF = "eth0";
    private static final String HOST_TABLE = PREFIX;
    private static final String HOST_CHAIN = "in";
    private static final int PRIORITY = -500;
    private static final AtomicInteger SEQUENCE = new AtomicInteger();
    private static final Set<TestNetwork> LIVE = ConcurrentHashMap.newKeySet();
    private static final Object HOOK_LOCK = new Object();
    private static boolean hookInstalled;
    private static volatile String unavailable;
    private static volatile Boolean nft;
    private static volatile Boolean netem;

    private final String id;
    private final String subnet;
    private final Host root;
    private final Map<String, Host> hosts = new LinkedHashMap<>();
    private final List<HostProcess> processes = new CopyOnWriteArrayList<>();
    private volatile boolean closed;

    private TestNetwork(String id, String subnet) {
        this.id = id;
        this.subnet = subnet;
        this.root = new Host(this, "root", null, null, subnet + ".1", -1);
    }

    // ------------------------------------------------------------------------------------------
    // Creation
    // ------------------------------------------------------------------------------------------

    /**
     * Aborts the calling test (JUnit assumption) with the reason when network namespaces cannot be
     * created here: not root, no {@code ip}, or the kernel refuses. The probe runs once per JVM.
     */
    public static void assumeAvailable() {
        String why = unavailableReason();
        Assumptions.assumeTrue(
                why == null, () -> "network namespaces are not available here: " + why);
    }

    /** Null if namespaces, veth pairs and bridges can be created here, else why not. */
    public static String unavailableReason() {
        String why = unavailable;
        if (why == null) {
            why = probe();
            unavailable = why;
        }
        return why.isEmpty() ? null : why;
    }

    /** True if {@code nft} is installed (black holes, loss, partitions). */
    public static boolean nftAvailable() {
        Boolean b = nft;
        if (b == null) {
            b = Proc.of("nft", "--version").timeout(CMD_TIMEOUT).run().ok();
            nft = b;
        }
        return b;
    }

    /**
     * Null if {@code tc ... netem} works on this kernel ({@link #delay}), else the error {@code tc}
     * gave. Probed on a host of this network the first time it is asked.
     */
    public String netemUnavailableReason() {
        Boolean b = netem;
        Host probe = hosts.values().iterator().next();
        if (b == null) {
            Proc.Result r =
                    probe.proc("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms")
                            .timeout(CMD_TIMEOUT)
                            .run();
            if (r.ok()) {
                probe.proc("tc", "qdisc", "del", "dev", "lo", "root").timeout(CMD_TIMEOUT).run();
            } else {
                netemError = (r.stderr() + r.stdout()).trim();
            }
            b = r.ok();
            netem = b;
        }
        return b ? null : netemError;
    }

    private static volatile String netemError = "";

    /**
     * Creates the bridge and one namespace per name (in this order; names are the test's own, e.g.
     * "client", "pgrelay", "pg1"). Call {@link #assumeAvailable()} first to skip, rather than fail,
     * where namespaces cannot be created.
     */
    public static TestNetwork create(String... hostNames) {
        if (hostNames.length == 0 || hostNames.length > 200) {
            throw new IllegalArgumentException("1 to 200 hosts");
        }
        installHook();
        reapLeftovers();
        String id =
                PREFIX
                        + ownerTag(ProcessHandle.current().pid())
                        + Character.forDigit(SEQUENCE.getAndIncrement() % 36, 36);
        TestNetwork net = new TestNetwork(id, freeSubnet());
        LIVE.add(net);
        try {
            net.build(hostNames);
            return net;
        } catch (RuntimeException | Error e) {
            try {
                net.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    private void build(String[] hostNames) {
        String bridge = id + "b";
        run("ip", "link", "add", bridge, "type", "bridge");
        run("ip", "addr", "add", root.address + "/24", "dev", bridge);
        run("ip", "link", "set", bridge, "up");
        if (nftAvailable()) {
            nft(null, "add table netdev " + id + "\n");
        }
        int index = 0;
        for (String name : hostNames) {
            if (hosts.containsKey(name) || name.equals(root.name)) {
                throw new IllegalArgumentException("duplicate host name " + name);
            }
            String ns = id + "h" + index;
            String veth = id + "v" + index;
            Host h = new Host(this, name, ns, veth, subnet + "." + (10 + index), index);
            hosts.put(name, h);
            run("ip", "netns", "add", ns);
            run("ip", "link", "add", veth, "type", "veth", "peer", "name", HOST_IF, "netns", ns);
            run("ip", "link", "set", veth, "master", bridge);
            run("ip", "link", "set", veth, "up");
            run("ip", "-n", ns, "link", "set", "lo", "up");
            run("ip", "-n", ns, "addr", "add", h.address + "/24", "dev", HOST_IF);
            run("ip", "-n", ns, "link", "set", HOST_IF, "up");
            if (nftAvailable()) {
                nft(
                        null,
                        "add chain netdev "
                                + id
                                + " "
                                + h.rootChain()
                                + " { type filter hook ingress device \""
                                + veth
                                + "\" priority "
                                + PRIORITY
                                + "; policy accept; }\n");
                nft(
                        h,
                        "add table netdev "
                                + HOST_TABLE
                                + "\nadd chain netdev "
                                + HOST_TABLE
                                + " "
                                + HOST_CHAIN
                                + " { type filter hook ingress device \""
                                + HOST_IF
                                + "\" priority "
                                + PRIORITY
                                + "; policy accept; }\n");
            }
            index++;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Accessors
    // ------------------------------------------------------------------------------------------

    /** The root namespace's address on the bridge (where an in-JVM server can listen). */
    public String rootAddress() {
        return root.address;
    }

    /** The root namespace as a host (for {@link #partition}); its commands run directly. */
    public Host root() {
        return root;
    }

    public Host host(String name) {
        Host h = hosts.get(name);
        if (h == null) {
            throw new IllegalArgumentException("no host " + name + " in " + hosts.keySet());
        }
        return h;
    }

    public List<Host> hosts() {
        return List.copyOf(hosts.values());
    }

    /** The prefix of every name this network created (namespaces, interfaces, nft table). */
    public String id() {
        return id;
    }

    @Override
    public String toString() {
        return "TestNetwork[" + id + " " + subnet + ".0/24 " + hosts.values() + "]";
    }

    /**
     * Makes a service of the root namespace that listens on loopback ({@code
     * targetHost:targetPort}) reachable at {@code h}'s address and {@code port}, so that faults on
     * {@code h} cut it off: a {@link TcpEcho} forwarder on {@link #rootAddress()} reaches the
     * service, and one inside {@code h} reaches that. Both stop when the network closes.
     */
    public void forward(Host h, int port, String targetHost, int targetPort) {
        requireHost(h);
        int rootPort = FreePorts.next();
        root.spawn(
                        Map.of(),
                        TcpEcho.command(
                                "forward",
                                root.address,
                                String.valueOf(rootPort),
                                targetHost,
                                String.valueOf(targetPort)))
                .awaitStdout("listening", FORWARDER_START);
        h.spawn(
                        Map.of(),
                        TcpEcho.command(
                                "forward",
                                h.address,
                                String.valueOf(port),
                                root.address,
                                String.valueOf(rootPort)))
                .awaitStdout("listening", FORWARDER_START);
    }

    // ------------------------------------------------------------------------------------------
    // Faults
    // ------------------------------------------------------------------------------------------

    /** Every packet to and from {@code h} is dropped silently (no RST, no ICMP). */
    public void blackHole(Host h) {
        loss(h, 100);
    }

    /** Each packet to and from {@code h} is dropped with this probability (percent, 1 to 100). */
    public void loss(Host h, int percent) {
        dropInbound(h, percent);
        dropOutbound(h, percent);
    }

    /** Packets to {@code h} are dropped with this probability (percent); its sends go through. */
    public void dropInbound(Host h, int percent) {
        addRule(h, true, drop(percent, ""));
    }

    /** Packets from {@code h} are dropped with this probability (percent); it still receives. */
    public void dropOutbound(Host h, int percent) {
        addRule(h, false, drop(percent, ""));
    }

    /**
     * No packet between {@code a} and {@code b} (either may be {@link #root()}) gets through, both
     * ways; everyone else still reaches both. The rules sit on {@code a}'s link (on {@code b}'s if
     * {@code a} is the root), so {@link #heal(Host)} of that host lifts the partition.
     */
    public void partition(Host a, Host b) {
        if (a == b) {
            throw new IllegalArgumentException("a host cannot be partitioned from itself");
        }
        Host on = a.isRoot() ? b : a;
        Host other = on == a ? b : a;
        addRule(on, true, "ip saddr " + other.address + " drop");
        addRule(on, false, "ip daddr " + other.address + " drop");
    }

    /** The bridge-side end of {@code h}'s link down: a pulled cable. {@link #linkUp} undoes it. */
    public void linkDown(Host h) {
        requireHost(h);
        run("ip", "link", "set", h.veth, "down");
    }

    public void linkUp(Host h) {
        requireHost(h);
        run("ip", "link", "set", h.veth, "up");
    }

    /**
     * Delays every packet to and from {@code h} by {@code delay} ± {@code jitter} (netem on both
     * ends of its link, so a round trip to it takes 2 × delay longer). Aborts the test (JUnit
     * assumption) where the kernel has no netem.
     */
    public void delay(Host h, Duration delay, Duration jitter) {
        requireHost(h);
        String why = netemUnavailableReason();
        Assumptions.assumeTrue(why == null, () -> "tc netem is not available here: " + why);
        List<String> args =
                List.of(
                        "root",
                        "netem",
                        "delay",
                        delay.toMillis() + "ms",
                        jitter.toMillis() + "ms");
        List<String> inHost = new ArrayList<>(List.of("tc", "qdisc", "replace", "dev", HOST_IF));
        inHost.addAll(args);
        h.proc(inHost).timeout(CMD_TIMEOUT).check();
        List<String> inRoot = new ArrayList<>(List.of("tc", "qdisc", "replace", "dev", h.veth));
        inRoot.addAll(args);
        run(inRoot.toArray(String[]::new));
    }

    /** Lifts every fault set on {@code h}: drop rules, partitions set on it, delay, link down. */
    public void heal(Host h) {
        requireHost(h);
        if (nftAvailable()) {
            nft(null, "flush chain netdev " + id + " " + h.rootChain() + "\n");
            nft(h, "flush chain netdev " + HOST_TABLE + " " + HOST_CHAIN + "\n");
        }
        if (netem != null && netem) {
            h.proc("tc", "qdisc", "del", "dev", HOST_IF, "root").timeout(CMD_TIMEOUT).run();
            Proc.of("tc", "qdisc", "del", "dev", h.veth, "root").timeout(CMD_TIMEOUT).run();
        }
        run("ip", "link", "set", h.veth, "up");
    }

    /** {@link #heal(Host)} for every host. */
    public void healAll() {
        for (Host h : hosts.values()) {
            heal(h);
        }
    }

    private static String drop(int percent, String match) {
        if (percent < 1 || percent > 100) {
            throw new IllegalArgumentException("percent must be 1 to 100: " + percent);
        }
        String random = percent == 100 ? "" : "numgen random mod 100 < " + percent + " ";
        return match + random + "drop";
    }

    /** inbound: on the host's eth0 (packets to it); else on the bridge-side end (from it). */
    private void addRule(Host h, boolean inbound, String rule) {
        requireHost(h);
        Assumptions.assumeTrue(
                nftAvailable(),
                "nft is not installed (Debian package nftables): no drop rules, so no black"
                        + " holes, loss or partitions");
        if (inbound) {
            nft(h, "add rule netdev " + HOST_TABLE + " " + HOST_CHAIN + " " + rule + "\n");
        } else {
            nft(null, "add rule netdev " + id + " " + h.rootChain() + " " + rule + "\n");
        }
    }

    private void requireHost(Host h) {
        if (h.net != this || h.isRoot()) {
            throw new IllegalArgumentException(h + " is not a namespace host of " + id);
        }
    }

    // ------------------------------------------------------------------------------------------
    // Cleanup
    // ------------------------------------------------------------------------------------------

    /**
     * Kills the processes started in the hosts, deletes the namespaces (their veth pairs go with
     * them), the bridge and the nft table. Idempotent; failures are collected and thrown at the
     * end, after everything was tried.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        List<String> failures = new ArrayList<>();
        for (HostProcess p : processes) {
            p.close();
        }
        for (Host h : hosts.values()) {
            // Deleting one end deletes the pair at once; the namespace's own devices go when the
            // kernel gets round to destroying it, after the delete returned.
            deleteLink(h.veth, failures);
            deleteNamespace(h.namespace, failures);
        }
        deleteTable(id, failures);
        deleteLink(id + "b", failures);
        LIVE.remove(this);
        List<String> left = leftovers(id);
        if (!left.isEmpty()) {
            failures.add("left behind: " + left);
        }
        if (!failures.isEmpty()) {
            throw new IllegalStateException("cleanup of " + id + ": " + failures);
        }
    }

    /**
     * Namespaces, root-namespace interfaces and nft tables whose names start with {@code prefix}
     * (e.g. {@link #id()} or {@link #PREFIX}).
     */
    public static List<String> leftovers(String prefix) {
        List<String> out = new ArrayList<>();
        for (String ns : namespaces()) {
            if (ns.startsWith(prefix)) {
                out.add("netns " + ns);
            }
        }
        for (String link : links()) {
            if (link.startsWith(prefix)) {
                out.add("link " + link);
            }
        }
        for (String table : netdevTables()) {
            if (table.startsWith(prefix)) {
                out.add("nft table netdev " + table);
            }
        }
        return out;
    }

    /** Deletes what JVMs that are no longer alive left behind (their pid is in the names). */
    static void reapLeftovers() {
        List<String> ignored = new ArrayList<>();
        for (String link : links()) {
            if (ownerGone(link)) {
                deleteLink(link, ignored);
            }
        }
        for (String ns : namespaces()) {
            if (ownerGone(ns)) {
                deleteNamespace(ns, ignored);
            }
        }
        for (String table : netdevTables()) {
            if (ownerGone(table)) {
                deleteTable(table, ignored);
            }
        }
        for (String link : links()) {
            if (ownerGone(link)) {
                deleteLink(link, ignored);
            }
        }
    }

    private static boolean ownerGone(String name) {
        if (!name.startsWith(PREFIX) || name.length() < PREFIX.length() + 5) {
            return false;
        }
        long pid;
        try {
            pid = Long.parseLong(name.substring(PREFIX.length(), PREFIX.length() + 5), 36);
        } catch (NumberFormatException e) {
            return false;
        }
        return pid != ProcessHandle.current().pid()
                && ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true);
    }

    private static String ownerTag(long pid) {
        String s = Long.toString(pid, 36);
        if (s.length() > 5) {
            throw new IllegalStateException("pid too large for names: " + pid);
        }
        return "0".repeat(5 - s.length()) + s;
    }

    private static void deleteNamespace(String ns, List<String> failures) {
        if (!namespaces().contains(ns)) {
            return;
        }
        // A process still inside keeps the namespace, and its interfaces, alive after the delete.
        Proc.Result pids = Proc.of("ip", "netns", "pids", ns).timeout(CMD_TIMEOUT).run();
        for (String line : pids.stdout().split("\\s+")) {
            if (!line.isBlank()) {
                ProcessHandle.of(Long.parseLong(line.trim())).ifPresent(Proc::killTree);
            }
        }
        Proc.Result r = Proc.of("ip", "netns", "del", ns).timeout(CMD_TIMEOUT).run();
        if (!r.ok()) {
            failures.add("ip netns del " + ns + ": " + r.stderr().trim());
        }
    }

    private static void deleteLink(String link, List<String> failures) {
        if (!links().contains(link)) {
            return;
        }
        Proc.Result r = Proc.of("ip", "link", "del", link).timeout(CMD_TIMEOUT).run();
        if (!r.ok()) {
            failures.add("ip link del " + link + ": " + r.stderr().trim());
        }
    }

    private static void deleteTable(String table, List<String> failures) {
        if (!netdevTables().contains(table)) {
            return;
        }
        Proc.Result r =
                Proc.of("nft", "delete", "table", "netdev", table).timeout(CMD_TIMEOUT).run();
        if (!r.ok()) {
            failures.add("nft delete table netdev " + table + ": " + r.stderr().trim());
        }
    }

    private static List<String> namespaces() {
        Proc.Result r = Proc.of("ip", "netns", "list").timeout(CMD_TIMEOUT).run();
        List<String> out = new ArrayList<>();
        for (String line : r.stdout().split("\n")) {
            String name = line.trim().split("\\s+")[0];
            if (!name.isEmpty()) {
                out.add(name);
            }
        }
        return out;
    }

    private static List<String> links() {
        Proc.Result r = Proc.of("ip", "-o", "link", "show").timeout(CMD_TIMEOUT).run();
        List<String> out = new ArrayList<>();
        for (String line : r.stdout().split("\n")) {
            // "12: pgrt...v0@if2: <BROADCAST,...> ..."
            String[] parts = line.split(":\\s+", 3);
            if (parts.length >= 2) {
                String name = parts[1];
                int at = name.indexOf('@');
                out.add(at >= 0 ? name.substring(0, at) : name);
            }
        }
        return out;
    }

    private static List<String> netdevTables() {
        if (!nftAvailable()) {
            return List.of();
        }
        Proc.Result r = Proc.of("nft", "list", "tables", "netdev").timeout(CMD_TIMEOUT).run();
        List<String> out = new ArrayList<>();
        for (String line : r.stdout().split("\n")) {
            String[] parts = line.trim().split("\\s+");
            if (parts.length == 3 && parts[0].equals("table")) {
                out.add(parts[2]);
            }
        }
        return out;
    }

    private static void installHook() {
        synchronized (HOOK_LOCK) {
            if (!hookInstalled) {
                Runtime.getRuntime()
                        .addShutdownHook(
                                new Thread(
                                        () -> {
                                            for (TestNetwork n : List.copyOf(LIVE)) {
                                                try {
                                                    n.close();
                                                } catch (RuntimeException ignored) {
                                                    // best effort at exit
                                                }
                                            }
                                        },
                                        "pgrelay-testnetwork-cleanup"));
                hookInstalled = true;
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------

    private static String probe() {
        if (!Proc.isRoot()) {
            return "the tests do not run as root (ip netns add needs CAP_SYS_ADMIN and"
                    + " CAP_NET_ADMIN)";
        }
        String ns = PREFIX + ownerTag(ProcessHandle.current().pid()) + "probe";
        try {
            Proc.Result add = Proc.of("ip", "netns", "add", ns).timeout(CMD_TIMEOUT).run();
            if (!add.ok()) {
                return "ip netns add failed: " + (add.stderr() + add.stdout()).trim();
            }
            Proc.Result veth =
                    Proc.of(
                                    "ip", "-n", ns, "link", "add", "p0", "type", "veth", "peer",
                                    "name", "p1")
                            .timeout(CMD_TIMEOUT)
                            .run();
            if (!veth.ok()) {
                return "cannot create a veth pair: " + (veth.stderr() + veth.stdout()).trim();
            }
            Proc.Result bridge =
                    Proc.of("ip", "-n", ns, "link", "add", "b0", "type", "bridge")
                            .timeout(CMD_TIMEOUT)
                            .run();
            if (!bridge.ok()) {
                return "cannot create a bridge: " + (bridge.stderr() + bridge.stdout()).trim();
            }
            return "";
        } catch (Proc.ProcException e) {
            return "cannot run ip (iproute2): " + e.getMessage();
        } finally {
            try {
                Proc.of("ip", "netns", "del", ns).timeout(CMD_TIMEOUT).run();
            } catch (Proc.ProcException ignored) {
                // no ip at all
            }
        }
    }

    /** 10.231.N with the first N (from a pid-based start) no interface here has an address in. */
    private static synchronized String freeSubnet() {
        String addrs =
                Proc.of("ip", "-o", "-4", "addr", "show").timeout(CMD_TIMEOUT).check().stdout();
        int start = (int) ((ProcessHandle.current().pid() * 7 + SEQUENCE.get() * 13) % 250);
        for (int i = 0; i < 250; i++) {
            int n = 1 + (start + i) % 250;
            if (!addrs.contains(" 10.231." + n + ".")) {
                return "10.231." + n;
            }
        }
        throw new IllegalStateException("no free 10.231.N.0/24 subnet:\n" + addrs);
    }

    private static void run(String... cmd) {
        Proc.of(cmd).timeout(CMD_TIMEOUT).check();
    }

    /** Runs an nft script in the root namespace (host null) or in a host's namespace. */
    private static void nft(Host h, String script) {
        Proc p = h == null ? Proc.of("nft", "-f", "-") : h.proc("nft", "-f", "-");
        p.stdin(script).timeout(CMD_TIMEOUT).check();
    }

    // ------------------------------------------------------------------------------------------
    // Host
    // ------------------------------------------------------------------------------------------

    /** A simulated host: a namespace with one address on the bridge, or the root namespace. */
    public static final class Host {
        private final TestNetwork net;
        private final String name;
        private final String namespace;
        private final String veth;
        private final String address;
        private final int index;

        private Host(
                TestNetwork net,
                String name,
                String namespace,
                String veth,
                String address,
                int index) {
            this.net = net;
            this.name = name;
            this.namespace = namespace;
            this.veth = veth;
            this.address = address;
            this.index = index;
        }

        /** The test's name for it ("root" for the root namespace). */
        public String name() {
            return name;
        }

        /** Its address on the bridge. */
        public String address() {
            return address;
        }

        /** The namespace ({@code ip netns exec} name); null for the root namespace. */
        public String namespace() {
            return namespace;
        }

        /** The bridge-side end of its veth pair (root namespace); null for the root. */
        public String bridgePort() {
            return veth;
        }

        public boolean isRoot() {
            return namespace == null;
        }

        private String rootChain() {
            return "h" + index;
        }

        /** A one-shot command in this host ({@code ip netns exec <ns> ...}); see {@link Proc}. */
        public Proc proc(String... command) {
            return proc(List.of(command));
        }

        /** A one-shot command in this host ({@code ip netns exec <ns> ...}); see {@link Proc}. */
        public Proc proc(List<String> command) {
            return Proc.of(commandLine(command));
        }

        /**
         * Starts a long-running command in this host with its standard input open ({@link
         * HostProcess#send}). The inherited environment loses its {@code PG*} variables and gets
         * {@code LC_ALL=C} and then {@code env}. The network kills it when it closes.
         */
        public HostProcess spawn(Map<String, String> env, String... command) {
            return spawn(env, List.of(command));
        }

        public HostProcess spawn(Map<String, String> env, List<String> command) {
            if (net.closed) {
                throw new IllegalStateException(net.id + " is closed");
            }
            List<String> cmd = commandLine(command);
            Path out = null;
            Path err = null;
            try {
                out = Files.createTempFile("pgrelay-netproc-", ".out");
                err = Files.createTempFile("pgrelay-netproc-", ".err");
                ProcessBuilder pb = new ProcessBuilder(cmd);
                pb.redirectOutput(out.toFile());
                pb.redirectError(err.toFile());
                pb.redirectInput(ProcessBuilder.Redirect.PIPE);
                Map<String, String> environment = pb.environment();
                environment.keySet().removeIf(k -> k.startsWith("PG"));
                environment.put("LC_ALL", "C");
                environment.putAll(env);
                HostProcess p = new HostProcess(cmd, pb.start(), out, err);
                net.processes.add(p);
                return p;
            } catch (IOException e) {
                deleteQuietly(out);
                deleteQuietly(err);
                throw new UncheckedIOException("cannot start " + cmd, e);
            }
        }

        private List<String> commandLine(List<String> command) {
            if (isRoot()) {
                return command;
            }
            List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", namespace));
            cmd.addAll(command);
            return Collections.unmodifiableList(cmd);
        }

        @Override
        public String toString() {
            return name + "(" + address + (isRoot() ? "" : " " + namespace) + ")";
        }
    }

    private static void deleteQuietly(Path p) {
        if (p != null) {
            new File(p.toString()).delete();
        }
    }
}
