package io.pgrelay.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.testkit.TestNetwork.Host;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The network-fault test bed itself: reachability, each fault, healing, cleanup. */
@Timeout(120)
class TestNetworkTest {

    private static final int ECHO_PORT = 7007;
    private static final int CLOSED_PORT = 7008;

    @BeforeAll
    static void namespaces() {
        TestNetwork.assumeAvailable();
    }

    @Test
    void hostsReachEachOtherAndTheRootAndFaultsDropWithoutResets() throws Exception {
        String id;
        try (TestNetwork net = TestNetwork.create("a", "b");
                ServerSocket rootEcho = rootEcho(net)) {
            id = net.id();
            Host a = net.host("a");
            Host b = net.host("b");
            assertTrue(a.address().startsWith("10.231."), a.address());
            HostProcess echo =
                    a.spawn(
                            Map.of(),
                            TcpEcho.command("listen", a.address(), String.valueOf(ECHO_PORT)));
            echo.awaitStdout("listening", Duration.ofSeconds(20));

            // root -> host, host -> host, host -> root
            assertEquals("echo hi from " + a.address(), ask(a.address(), ECHO_PORT, "hi", 2000));
            assertEquals("echo b from " + a.address(), askFrom(b, a.address(), ECHO_PORT, "b"));
            assertEquals(
                    "root echo a from " + net.rootAddress(),
                    askFrom(a, net.rootAddress(), rootEcho.getLocalPort(), "a"));

            // A port nobody listens on is refused (RST) while the network is healthy ...
            assertThrows(ConnectException.class, () -> connect(a.address(), CLOSED_PORT, 2000));

            // ... and times out in a black hole: no RST, no ICMP.
            try (Socket established = new Socket()) {
                established.connect(new InetSocketAddress(a.address(), ECHO_PORT), 2000);
                established.setSoTimeout(1500);
                net.blackHole(a);
                long start = System.nanoTime();
                assertThrows(
                        SocketTimeoutException.class,
                        () -> connect(a.address(), CLOSED_PORT, 1500));
                assertTrue(System.nanoTime() - start >= 1_400_000_000L);
                // An established connection gets no answer (and no error) either.
                new PrintWriter(established.getOutputStream(), true).println("lost");
                assertThrows(
                        SocketTimeoutException.class, () -> established.getInputStream().read());
                assertTrue(askFrom(b, a.address(), ECHO_PORT, "b").startsWith("failed"));
                net.heal(a);
                // The retransmission of "lost" gets through once healed.
                established.setSoTimeout(15000); // the RTO has backed off by now
                assertEquals(
                        "echo lost from " + a.address(),
                        new BufferedReader(
                                        new InputStreamReader(
                                                established.getInputStream(),
                                                StandardCharsets.UTF_8))
                                .readLine());
            }
            assertEquals(
                    "echo again from " + a.address(), ask(a.address(), ECHO_PORT, "again", 2000));

            // One way: a still sends (its SYNs leave) but hears nothing back.
            net.dropInbound(a, 100);
            assertThrows(SocketTimeoutException.class, () -> connect(a.address(), ECHO_PORT, 1000));
            net.heal(a);
            net.dropOutbound(a, 100);
            assertThrows(SocketTimeoutException.class, () -> connect(a.address(), ECHO_PORT, 1000));
            net.heal(a);

            // Link down: a pulled cable.
            net.linkDown(a);
            assertThrows(SocketTimeoutException.class, () -> connect(a.address(), ECHO_PORT, 1000));
            net.linkUp(a);
            assertEquals("echo up from " + a.address(), ask(a.address(), ECHO_PORT, "up", 5000));

            // Partition a|b: the root still reaches a, b does not.
            net.partition(a, b);
            assertTrue(askFrom(b, a.address(), ECHO_PORT, "b").startsWith("failed"));
            assertEquals("echo r from " + a.address(), ask(a.address(), ECHO_PORT, "r", 2000));
            net.heal(a);
            assertEquals("echo b from " + a.address(), askFrom(b, a.address(), ECHO_PORT, "b"));

            // Partition root|a.
            net.partition(net.root(), a);
            assertThrows(SocketTimeoutException.class, () -> connect(a.address(), ECHO_PORT, 1000));
            assertEquals("echo b from " + a.address(), askFrom(b, a.address(), ECHO_PORT, "b"));
            net.healAll();

            // 50 % loss each way: a connect needs the SYN and the SYN-ACK, so 75 % of them time
            // out (no retransmission within 200 ms); all 40 or none: p < 1e-5.
            net.loss(a, 50);
            int failed = 0;
            for (int i = 0; i < 40; i++) {
                try {
                    connect(a.address(), ECHO_PORT, 200);
                } catch (SocketTimeoutException e) {
                    failed++;
                }
            }
            net.heal(a);
            System.out.printf(
                    "TestNetworkTest: 50%% loss each way: %d of 40 connects failed%n", failed);
            assertTrue(failed > 0 && failed < 40, "failed " + failed);
            assertFalse(TestNetwork.leftovers(id).isEmpty());
        }
        assertEquals(List.of(), TestNetwork.leftovers(id));
    }

    @Test
    void delayNeedsNetem() throws Exception {
        try (TestNetwork net = TestNetwork.create("a")) {
            Host a = net.host("a");
            String why = net.netemUnavailableReason();
            System.out.println(
                    "TestNetworkTest: netem "
                            + (why == null ? "available" : "unavailable: " + why));
            HostProcess echo =
                    a.spawn(
                            Map.of(),
                            TcpEcho.command("listen", a.address(), String.valueOf(ECHO_PORT)));
            echo.awaitStdout("listening", Duration.ofSeconds(20));
            net.delay(a, Duration.ofMillis(100), Duration.ZERO); // aborts the test without netem
            long start = System.nanoTime();
            ask(a.address(), ECHO_PORT, "slow", 5000);
            // connect + one exchange: at least two round trips of 2 x 100 ms
            assertTrue(System.nanoTime() - start >= 400_000_000L);
        }
    }

    @Test
    void closingKillsProcessesAndRemovesEverything() {
        TestNetwork net = TestNetwork.create("x", "y", "z");
        String id = net.id();
        HostProcess sleeper = net.host("y").spawn(Map.of(), "sleep", "600");
        assertTrue(sleeper.isAlive());
        assertEquals(
                3 + 3 + 1 + (TestNetwork.nftAvailable() ? 1 : 0), TestNetwork.leftovers(id).size());
        net.close();
        assertFalse(sleeper.isAlive());
        assertEquals(List.of(), TestNetwork.leftovers(id));
        net.close(); // idempotent
    }

    private static ServerSocket rootEcho(TestNetwork net) throws IOException {
        ServerSocket server = new ServerSocket(0, 50, InetAddress.getByName(net.rootAddress()));
        Thread t =
                new Thread(
                        () -> {
                            while (!server.isClosed()) {
                                try (Socket s = server.accept()) {
                                    String line =
                                            new BufferedReader(
                                                            new InputStreamReader(
                                                                    s.getInputStream(),
                                                                    StandardCharsets.UTF_8))
                                                    .readLine();
                                    new PrintWriter(
                                                    s.getOutputStream(),
                                                    true,
                                                    StandardCharsets.UTF_8)
                                            .println(
                                                    "root echo "
                                                            + line
                                                            + " from "
                                                            + s.getLocalAddress().getHostAddress());
                                } catch (IOException ignored) {
                                    // closed
                                }
                            }
                        },
                        "root-echo");
        t.setDaemon(true);
        t.start();
        return server;
    }

    private static void connect(String address, int port, int timeoutMillis) throws IOException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(address, port), timeoutMillis);
        }
    }

    private static String ask(String address, int port, String message, int timeoutMillis)
            throws IOException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(address, port), timeoutMillis);
            s.setSoTimeout(timeoutMillis);
            new PrintWriter(s.getOutputStream(), true, StandardCharsets.UTF_8).println(message);
            return new BufferedReader(
                            new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8))
                    .readLine();
        }
    }

    /** TcpEcho connect from inside {@code from}: the answer, or "failed ...". */
    private static String askFrom(Host from, String address, int port, String message) {
        return from.proc(TcpEcho.command("connect", address, String.valueOf(port), message, "1500"))
                .timeout(Duration.ofSeconds(30))
                .run()
                .stdoutTrimmed();
    }
}
