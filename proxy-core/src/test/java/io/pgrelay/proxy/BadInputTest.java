package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.PgServer;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.postgresql.util.PSQLException;

/**
 * Malformed and hostile input from raw sockets: each gets a PostgreSQL ErrorResponse with the right
 * SQLSTATE, and a client already connected keeps working throughout.
 */
class BadInputTest {

    private static final int MAX_CLIENT_CONN = 5;

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres()
                    .withRelay(
                            relay ->
                                    relay.set("pool.max_client_conn", MAX_CLIENT_CONN)
                                            .set("protocol.max_message_size", "1MiB"));

    static Connection bystander;

    @BeforeAll
    static void connectBystander() throws Exception {
        bystander = servers.relay().app();
    }

    @AfterAll
    static void closeBystander() throws Exception {
        if (bystander != null) {
            bystander.close();
        }
    }

    /**
     * Reads backend messages until the server closes; returns the ErrorResponse fields of the first
     * error.
     */
    static Map<Character, String> readError(Socket s) throws IOException {
        s.setSoTimeout(5000);
        DataInputStream in = new DataInputStream(s.getInputStream());
        while (true) {
            int type;
            try {
                type = in.readUnsignedByte();
            } catch (EOFException e) {
                throw new AssertionError("connection closed without an ErrorResponse");
            }
            int len = in.readInt();
            byte[] body = new byte[len - 4];
            in.readFully(body);
            if (type == 'E') {
                Map<Character, String> fields = new RawClient.Message('E', body).fields();
                assertEquals(-1, in.read(), "connection should be closed after a FATAL error");
                return fields;
            }
        }
    }

    private void assertBystanderWorks() throws Exception {
        assertEquals("1", one(bystander, "select 1"));
    }

    @Test
    void garbageInsteadOfAStartupPacketIsClosedQuietly() throws Exception {
        // PostgreSQL logs "invalid length of startup packet" and closes without a reply.
        assertClosedWithoutReply(
                "GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        assertBystanderWorks();
    }

    @Test
    void terminateBeforeTheStartupPacketIsClosedQuietly() throws Exception {
        // What node-postgres sends when client.end() runs before the connection is established.
        assertClosedWithoutReply(new byte[] {'X', 0, 0, 0, 4});
        assertBystanderWorks();
    }

    /** Sends {@code bytes} as the first thing on a connection: the relay must close, silently. */
    private void assertClosedWithoutReply(byte[] bytes) throws IOException {
        try (Socket s = new Socket("127.0.0.1", servers.relay().writePort())) {
            s.setSoTimeout(5000);
            s.getOutputStream().write(bytes);
            assertEquals(-1, s.getInputStream().read(), "closed, with no reply at all");
        }
    }

    @Test
    void twoGigabyteLengthAfterLogin() throws Exception {
        try (Socket s = loggedInTrustlessSocket()) {
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            out.writeByte('Q');
            out.writeInt(Integer.MAX_VALUE);
            out.write("select 1".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            Map<Character, String> e = readError(s);
            assertEquals("08P01", e.get('C'));
            assertTrue(e.get('M').contains("too long"), e.get('M'));
        }
        assertBystanderWorks();
    }

    @Test
    void negativeMessageLength() throws Exception {
        try (Socket s = loggedInTrustlessSocket()) {
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            out.writeByte('P');
            out.writeInt(2);
            out.flush();
            assertEquals("08P01", readError(s).get('C'));
        }
        assertBystanderWorks();
    }

    @Test
    void unsupportedProtocolVersion() throws Exception {
        try (Socket s = new Socket("127.0.0.1", servers.relay().writePort())) {
            s.getOutputStream().write(RawClient.startupPacket(4 << 16, "user", "app"));
            Map<Character, String> e = readError(s);
            assertEquals("0A000", e.get('C'));
            assertTrue(e.get('M').contains("unsupported frontend protocol 4.0"), e.get('M'));
        }
        assertBystanderWorks();
    }

    @Test
    void sslRequestIsRefusedAndTheClientGoesOnInTheClear() throws Exception {
        try (Connection c =
                servers.relay()
                        .connect(
                                servers.relay().writePort(),
                                PgServer.APP_DB,
                                "app",
                                "app-secret",
                                Map.of("sslmode", "prefer", "prepareThreshold", "0"))) {
            assertEquals("1", one(c, "select 1"));
        }
    }

    @Test
    void secondSslRequestIsRefusedAsPostgreSqlDoes() throws Exception {
        byte[] sslRequest = {0, 0, 0, 8, 0x04, (byte) 0xd2, 0x16, 0x2f};
        try (Socket s = new Socket("127.0.0.1", servers.relay().writePort())) {
            s.setSoTimeout(5000);
            s.getOutputStream().write(sslRequest);
            assertEquals('N', s.getInputStream().read());
            s.getOutputStream().write(sslRequest);
            Map<Character, String> e = readError(s);
            assertEquals("0A000", e.get('C'));
            assertTrue(e.get('M').contains("unsupported frontend protocol 1234.5679"), e.get('M'));
        }
        assertBystanderWorks();
    }

    @Test
    void tooManyClients() throws Exception {
        List<Connection> held = new ArrayList<>();
        try {
            PSQLException refused = null;
            for (int i = 0; i < 10 && refused == null; i++) {
                try {
                    held.add(servers.relay().app());
                } catch (PSQLException e) {
                    refused = e;
                }
            }
            assertTrue(
                    refused != null,
                    "max_client_conn " + MAX_CLIENT_CONN + " never refused a client");
            assertEquals("53300", refused.getSQLState());
            assertTrue(refused.getMessage().contains("max_client_conn"), refused.getMessage());
            assertBystanderWorks();
        } finally {
            for (Connection c : held) {
                c.close();
            }
        }
        // Slots come back once clients leave. Their Terminates are handled asynchronously (on
        // either event loop), so a new connection may otherwise race them.
        Await.until(
                "the closed clients to leave",
                Duration.ofSeconds(10),
                () -> servers.relay().relay().clientCount() < MAX_CLIENT_CONN);
        try (Connection c = servers.relay().app()) {
            assertEquals("1", one(c, "select 1"));
        }
    }

    @Test
    void wrongPasswordOverRawProtocolIsFatal28P01() throws Exception {
        assertThrows(PSQLException.class, () -> servers.relay().connect("app", "wrong"));
        assertBystanderWorks();
    }

    /**
     * A raw socket past startup: with SCRAM the client has to answer; garbage right after the
     * startup is enough.
     */
    private Socket loggedInTrustlessSocket() throws IOException {
        Socket s = new Socket("127.0.0.1", servers.relay().writePort());
        s.getOutputStream()
                .write(RawClient.startupPacket(3 << 16, "user", "app", "database", "appdb"));
        s.getOutputStream().flush();
        return s;
    }
}
