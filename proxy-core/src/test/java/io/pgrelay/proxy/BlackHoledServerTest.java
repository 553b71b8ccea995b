package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.PgServer;
import io.pgrelay.testkit.Proc;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A server whose host stops answering (the packets vanish: a host powered off, a partition), made
 * real with a network namespace of the test's own: pgrelay reaches PostgreSQL through a veth pair
 * into the namespace, where a forwarder passes the bytes on; a blackhole route inside the namespace
 * then drops everything it would send back, so nothing is acknowledged and nothing is refused.
 * Without tcp_user_timeout and keepalive, such a connection waits ~15 minutes of retransmissions
 * (idle: 2 h 11 min). Needs root and {@code ip netns}; skipped otherwise.
 */
class BlackHoledServerTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    private static String ns;
    private static String hostVeth;
    private static String hostAddress;
    private static String nsAddress;
    private static Process nsForwarder;
    private static Forwarder hostForwarder;

    @BeforeAll
    static void namespace() throws Exception {
        assumeTrue(Proc.isRoot(), "needs root for ip netns");
        int id = ThreadLocalRandom.current().nextInt(1_000_000);
        int net = 1 + ThreadLocalRandom.current().nextInt(250);
        ns = "pgrelay-bh-" + id;
        hostVeth = "pgrbh" + id;
        String nsVeth = "pgrbn" + id;
        hostAddress = "10.213." + net + ".1";
        nsAddress = "10.213." + net + ".2";
        Proc.Result add = Proc.of("ip", "netns", "add", ns).run();
        assumeTrue(add.ok(), "ip netns add failed, no black hole to test with: " + add.stderr());
        try {
            ip("link", "add", hostVeth, "type", "veth", "peer", "name", nsVeth, "netns", ns);
            ip("addr", "add", hostAddress + "/30", "dev", hostVeth);
            ip("link", "set", hostVeth, "up");
            inNs("ip", "addr", "add", nsAddress + "/30", "dev", nsVeth);
            inNs("ip", "link", "set", nsVeth, "up");
            inNs("ip", "link", "set", "lo", "up");
            // PostgreSQL listens on loopback: a forwarder on the host side of the pair reaches it,
            // and one inside the namespace (where pgrelay connects) reaches that.
            hostForwarder =
                    new Forwarder(
                            new InetSocketAddress(hostAddress, 0),
                            new InetSocketAddress(PgServer.HOST, servers.primary().port()));
            nsForwarder =
                    new ProcessBuilder(
                                    "ip",
                                    "netns",
                                    "exec",
                                    ns,
                                    "/usr/bin/python3",
                                    "-c",
                                    NS_FORWARDER,
                                    nsAddress,
                                    hostAddress,
                                    Integer.toString(hostForwarder.port()))
                            .redirectErrorStream(true)
                            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                            .start();
            Await.until(
                    "the forwarder in the namespace listens",
                    Duration.ofSeconds(10),
                    () -> {
                        try (Socket s = new Socket()) {
                            s.connect(new InetSocketAddress(nsAddress, 5432), 500);
                            return true;
                        } catch (IOException e) {
                            return false;
                        }
                    });
        } catch (Exception | AssertionError e) {
            cleanUp();
            throw e;
        }
    }

    @AfterAll
    static void cleanUp() {
        if (nsForwarder != null) {
            nsForwarder.destroyForcibly();
        }
        if (hostForwarder != null) {
            hostForwarder.close();
        }
        if (ns != null) {
            // The host end first: the namespace may linger (and keep the pair) while its sockets
            // die.
            Proc.of("ip", "link", "del", hostVeth).run();
            Proc.of("ip", "netns", "del", ns).run();
        }
    }

    @AfterEach
    void lift() {
        Proc.of("ip", "netns", "exec", ns, "ip", "route", "del", "blackhole", hostAddress + "/32")
                .run();
    }

    private static void blackHole() {
        inNs("ip", "route", "add", "blackhole", hostAddress + "/32");
    }

    private RelayFixture.Builder relay() {
        return RelayFixture.builder(servers.primary()).set("backends.primary", nsAddress + ":5432");
    }

    @Test
    void aQueryToASilentServerFailsWithinTcpUserTimeout() throws Exception {
        try (RelayFixture relay = relay().set("tcp.server_tcp_user_timeout", 3000).start();
                Connection c = relay.app()) {
            c.setAutoCommit(false);
            assertEquals("1", one(c, "select 1")); // its server connection is through the hole
            blackHole();
            long start = System.nanoTime();
            SQLException e = assertThrows(SQLException.class, () -> one(c, "select 2"));
            long millis = Duration.ofNanos(System.nanoTime() - start).toMillis();
            System.out.printf(
                    "query to a black-holed server failed after %d ms: %s %s%n",
                    millis, e.getSQLState(), e.getMessage());
            // 3 s of unacknowledged data; without it, pgjdbc's own socketTimeout (60 s) would end
            // the wait long after.
            assertTrue(millis >= 2500 && millis < 10_000, "failed after " + millis + " ms: " + e);
        }
    }

    @Test
    void anIdlePooledConnectionToASilentServerIsDroppedByKeepalive() throws Exception {
        try (RelayFixture relay =
                        relay().set("tcp.tcp_keepidle", 1)
                                .set("tcp.tcp_keepintvl", 1)
                                .set("tcp.tcp_keepcnt", 2)
                                .set("tcp.tcp_user_timeout", 0)
                                .set("tcp.server_tcp_user_timeout", 0)
                                .start();
                Connection c = relay.app()) {
            assertEquals("1", one(c, "select 1"));
            List<ServerPool> pools = List.copyOf(relay.relay().pools().all());
            assertEquals(1, pools.size());
            // Back in the pool once the server's ReadyForQuery is handled (the client may be
            // first).
            Await.until(
                    "the server connection idle in the pool",
                    Duration.ofSeconds(5),
                    () -> pools.get(0).pool().stats().idle() == 1);
            blackHole();
            long start = System.nanoTime();
            // 1 s idle, then 2 unanswered probes 1 s apart.
            Await.until(
                    "the idle server connection is dropped",
                    Duration.ofSeconds(15),
                    () -> pools.get(0).pool().stats().total() == 0);
            long millis = Duration.ofNanos(System.nanoTime() - start).toMillis();
            System.out.printf(
                    "idle connection to a black-holed server dropped after %d ms%n", millis);
            assertTrue(millis < 8000, "dropped after " + millis + " ms");
        }
    }

    private static void ip(String... args) {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "ip";
        System.arraycopy(args, 0, cmd, 1, args.length);
        Proc.of(cmd).check();
    }

    private static void inNs(String... args) {
        String[] cmd = new String[args.length + 4];
        cmd[0] = "ip";
        cmd[1] = "netns";
        cmd[2] = "exec";
        cmd[3] = ns;
        System.arraycopy(args, 0, cmd, 4, args.length);
        Proc.of(cmd).check();
    }

    /** Listens on argv[1]:5432 in the namespace, passes each connection to argv[2]:argv[3]. */
    private static final String NS_FORWARDER =
            String.join(
                    "\n",
                    "import socket, sys, threading",
                    "def pipe(a, b):",
                    "    try:",
                    "        while True:",
                    "            d = a.recv(65536)",
                    "            if not d: break",
                    "            b.sendall(d)",
                    "    except OSError: pass",
                    "    for s in (a, b):",
                    "        try: s.shutdown(socket.SHUT_RDWR)",
                    "        except OSError: pass",
                    "srv = socket.socket()",
                    "srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
                    "srv.bind((sys.argv[1], 5432))",
                    "srv.listen(64)",
                    "while True:",
                    "    c, _ = srv.accept()",
                    "    u = socket.create_connection((sys.argv[2], int(sys.argv[3])))",
                    "    threading.Thread(target=pipe, args=(c, u), daemon=True).start()",
                    "    threading.Thread(target=pipe, args=(u, c), daemon=True).start()");

    /** A TCP forwarder on the host side of the pair, to PostgreSQL on loopback. */
    private static final class Forwarder implements AutoCloseable {
        private final ServerSocket listener;
        private final InetSocketAddress target;

        Forwarder(InetSocketAddress bind, InetSocketAddress target) throws IOException {
            this.listener = new ServerSocket();
            this.listener.bind(bind);
            this.target = target;
            Thread t = new Thread(this::accept, "black-hole-forwarder");
            t.setDaemon(true);
            t.start();
        }

        int port() {
            return listener.getLocalPort();
        }

        private void accept() {
            while (!listener.isClosed()) {
                try {
                    Socket in = listener.accept();
                    Socket out =
                            new Socket(
                                    InetAddress.getByName(target.getHostString()),
                                    target.getPort());
                    pipe(in, out);
                    pipe(out, in);
                } catch (IOException e) {
                    return;
                }
            }
        }

        private static void pipe(Socket from, Socket to) {
            Thread t =
                    new Thread(
                            () -> {
                                try (InputStream i = from.getInputStream();
                                        OutputStream o = to.getOutputStream()) {
                                    i.transferTo(o);
                                } catch (IOException ignored) {
                                    // one side went away
                                } finally {
                                    try {
                                        from.close();
                                        to.close();
                                    } catch (IOException ignored) {
                                        // closing anyway
                                    }
                                }
                            },
                            "black-hole-pipe");
            t.setDaemon(true);
            t.start();
        }

        @Override
        public void close() {
            try {
                listener.close();
            } catch (IOException ignored) {
                // test teardown
            }
        }
    }
}
