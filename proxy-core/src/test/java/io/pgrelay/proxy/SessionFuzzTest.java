package io.pgrelay.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.BugDetectors;
import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.pgrelay.proxy.RawClient.Message;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The logged-in session, fuzzed end to end: two clients of one pgrelay (transaction mode, one
 * server connection, statement mapping on) in front of a real PostgreSQL send whatever message
 * sequences the fuzzer makes, mostly well-formed extended and simple protocol with named
 * statements, sometimes arbitrary bodies. After each input both clients end their work (Sync,
 * ROLLBACK) and ask a question only they know the answer to; the invariants are:
 *
 * <ul>
 *   <li>each gets its own answer, never the other's (no server connection in two hands);
 *   <li>within seconds (no hang);
 *   <li>afterwards no client holds a server connection and the pool has none leased;
 *   <li>no buffer leaks (Netty's paranoid detector; a report fails the build).
 * </ul>
 *
 * A client pgrelay disconnects (bad length, FATAL) is replaced and not checked that round.
 */
class SessionFuzzTest {

    private static final char[] TYPES = {
        'Q', 'P', 'B', 'D', 'E', 'C', 'S', 'H', 'F', 'd', 'c', 'f'
    };
    private static final String[] NAMES = {"", "s1", "s2", "S_1"};
    private static final String[] SQL = {
        "select 1",
        "select $1::int",
        "begin",
        "commit",
        "rollback",
        "savepoint a",
        "rollback to a",
        "select pg_backend_pid()",
        "select 1/0",
        "deallocate all",
        "discard all",
        "prepare p as select 1",
        "set application_name = 'x'",
        "select * from generate_series(1, 20)",
        "",
        "selec",
        "begin; select 1",
    };

    /**
     * Longer than anything an input can legitimately take, with room for a loaded machine (a
     * campaign next to a full test run once went over 10 s once, not reproducibly).
     */
    private static final int HANG_MILLIS = 30_000;

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres()
                    .withRelay(
                            relay ->
                                    relay.set("pool.default_pool_size", 1)
                                            .set("pool.query_wait_timeout", "20s"));

    static RawClient a;
    static RawClient b;
    static long round;

    @AfterAll
    static void closeClients() throws IOException {
        for (RawClient c : new RawClient[] {a, b}) {
            if (c != null) {
                c.close();
            }
        }
    }

    @FuzzTest(maxDuration = "5m")
    void twoClients(FuzzedDataProvider data) throws Exception {
        allowLoopbackConnections(); // every time: cheap, and replays run before the agent's fuzzing
        if (a == null) {
            a = RawClient.app(servers.relay()).timeout(HANG_MILLIS);
        }
        if (b == null) {
            b = RawClient.app(servers.relay()).timeout(HANG_MILLIS);
        }
        ByteArrayOutputStream toA = new ByteArrayOutputStream();
        ByteArrayOutputStream toB = new ByteArrayOutputStream();
        int messages = data.consumeInt(1, 12);
        for (int i = 0; i < messages && data.remainingBytes() > 0; i++) {
            (data.consumeBoolean() ? toA : toB).writeBytes(message(data));
        }
        round++;
        if (System.getenv("SESSIONFUZZ_TRACE") != null) {
            System.err.println(
                    "round "
                            + round
                            + " A: "
                            + describe(toA.toByteArray())
                            + " B: "
                            + describe(toB.toByteArray()));
        }
        boolean aAlive = send(a, toA.toByteArray());
        boolean bAlive = send(b, toB.toByteArray());
        String markA = "A" + round;
        String markB = "B" + round;
        aAlive = aAlive && send(a, finish(markA));
        bAlive = bAlive && send(b, finish(markB));
        if (aAlive && !answers(a, markA, markB)) {
            a.close();
            a = null;
        }
        if (bAlive && !answers(b, markB, markA)) {
            b.close();
            b = null;
        }
        if (!aAlive && a != null) {
            a.close();
            a = null;
        }
        if (!bAlive && b != null) {
            b.close();
            b = null;
        }
        assertNothingLeased();
    }

    /**
     * Jazzer's SSRF detector would report the test's own connections to loopback. Called from the
     * fuzz test, not from BeforeAll: Jazzer's agent (and the detector) is only there by then.
     */
    private static void allowLoopbackConnections() {
        try {
            BugDetectors.allowNetworkConnections();
        } catch (IllegalStateException | LinkageError noAgent) {
            // Replaying regression inputs without Jazzer's agent: no detector to silence.
        }
    }

    /** One frontend message: usually well-formed, sometimes an arbitrary body of a chosen type. */
    private static byte[] message(FuzzedDataProvider data) {
        char type = TYPES[data.consumeInt(0, TYPES.length - 1)];
        if (data.consumeInt(0, 9) == 0) {
            return RawClient.message(type, data.consumeBytes(data.consumeInt(0, 64)));
        }
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        switch (type) {
            case 'Q' -> cstring(body, data.pickValue(SQL));
            case 'P' -> {
                cstring(body, data.pickValue(NAMES));
                cstring(body, data.pickValue(SQL));
                short types = (short) data.consumeInt(0, 1);
                body.write(0);
                body.write(types);
                for (int i = 0; i < types; i++) {
                    body.writeBytes(new byte[] {0, 0, 0, 23}); // int4
                }
            }
            case 'B' -> {
                cstring(body, "");
                cstring(body, data.pickValue(NAMES));
                body.writeBytes(new byte[] {0, 0}); // parameter formats
                int params = data.consumeInt(0, 1);
                body.writeBytes(new byte[] {0, (byte) params});
                for (int i = 0; i < params; i++) {
                    byte[] value =
                            Integer.toString(data.consumeInt(-5, 5))
                                    .getBytes(StandardCharsets.US_ASCII);
                    body.writeBytes(new byte[] {0, 0, 0, (byte) value.length});
                    body.writeBytes(value);
                }
                body.writeBytes(new byte[] {0, 0}); // result formats
            }
            case 'D', 'C' -> {
                body.write(data.consumeBoolean() ? 'S' : 'P');
                cstring(body, data.pickValue(NAMES));
            }
            case 'E' -> {
                cstring(body, "");
                body.writeBytes(new byte[] {0, 0, 0, (byte) data.consumeInt(0, 3)});
            }
            default -> body.writeBytes(data.consumeBytes(data.consumeInt(0, 16)));
        }
        return RawClient.message(type, body.toByteArray());
    }

    /** The messages as readable text, for SESSIONFUZZ_TRACE=1 in the environment. */
    private static String describe(byte[] bytes) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i + 5 <= bytes.length; ) {
            int len =
                    ((bytes[i + 1] & 0xff) << 24)
                            | ((bytes[i + 2] & 0xff) << 16)
                            | ((bytes[i + 3] & 0xff) << 8)
                            | (bytes[i + 4] & 0xff);
            out.append((char) bytes[i]).append('[');
            for (int j = i + 5; j < Math.min(bytes.length, i + 1 + len); j++) {
                char c = (char) (bytes[j] & 0xff);
                out.append(
                        c >= 32 && c < 127 ? String.valueOf(c) : String.format("\\x%02x", (int) c));
            }
            out.append("] ");
            i += 1 + len;
        }
        return out.toString();
    }

    private static void cstring(ByteArrayOutputStream out, String s) {
        out.writeBytes(s.getBytes(StandardCharsets.UTF_8));
        out.write(0);
    }

    /** Ends whatever the client started, then asks for its mark. */
    private static byte[] finish(String mark) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(RawClient.message('c', new byte[0])); // ends a COPY IN, ignored otherwise
        out.writeBytes(RawClient.sync());
        out.writeBytes(RawClient.query("rollback"));
        out.writeBytes(RawClient.query("select '" + mark + "'"));
        return out.toByteArray();
    }

    private static boolean send(RawClient client, byte[] bytes) {
        try {
            client.send(bytes);
            return true;
        } catch (IOException closed) {
            return false;
        }
    }

    /**
     * Reads until the client's own mark comes back, failing if the other's appears; false when
     * pgrelay closed the connection (a FATAL it was entitled to send).
     */
    private static boolean answers(RawClient client, String mark, String other) throws IOException {
        long deadline = System.nanoTime() + HANG_MILLIS * 1_000_000L;
        while (System.nanoTime() < deadline) {
            Message m;
            try {
                m = client.read();
            } catch (java.net.SocketTimeoutException e) {
                throw new AssertionError(
                        "no answer within " + HANG_MILLIS / 1000 + " s: a hang; " + relayState(),
                        e);
            } catch (IOException closed) {
                return false;
            }
            if (m.type() == 'E' && "FATAL".equals(m.fields().get('S'))) {
                return !client.closedByServer();
            }
            if (m.type() == 'D') {
                String value = new String(m.body(), StandardCharsets.UTF_8);
                assertFalse(value.contains(other), "got the other client's row: " + value);
                if (value.endsWith(mark) && m.columns().equals(java.util.List.of(mark))) {
                    Message complete = client.read();
                    assertEquals('C', complete.type());
                    Message ready = client.read();
                    assertEquals('Z', ready.type());
                    return true;
                }
            }
        }
        throw new AssertionError(
                "no answer within " + HANG_MILLIS / 1000 + " s: a hang; " + relayState());
    }

    /** What pgrelay thinks of its clients and pools, for a hang's report. */
    private static String relayState() {
        StringBuilder out = new StringBuilder("clients:");
        for (ClientSession s : servers.relay().relay().sessions()) {
            out.append(' ')
                    .append(s.id)
                    .append('=')
                    .append(s.stateLabel())
                    .append(s.linkedServer() != null ? "+server" : "");
        }
        servers.relay()
                .relay()
                .pools()
                .all()
                .forEach(p -> out.append("; pool ").append(p.pool().stats()));
        return out.toString();
    }

    private static void assertNothingLeased() throws InterruptedException {
        // Released right after the last ReadyForQuery is flushed: allow a moment.
        for (int i = 0; i < 200; i++) {
            Set<ServerConnection> linked = new HashSet<>();
            boolean any = false;
            for (ClientSession s : servers.relay().relay().sessions()) {
                ServerConnection c = s.linkedServer();
                if (c != null) {
                    any = true;
                    assertTrue(linked.add(c), "one server connection linked to two clients");
                }
            }
            boolean leased =
                    servers.relay().relay().pools().all().stream()
                            .anyMatch(p -> p.pool().stats().active() > 0);
            if (!any && !leased) {
                return;
            }
            Thread.sleep(5);
        }
        throw new AssertionError("a server connection stayed leased with both clients idle");
    }
}
