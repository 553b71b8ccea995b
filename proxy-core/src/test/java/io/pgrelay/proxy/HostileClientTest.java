package io.pgrelay.proxy;

import static io.pgrelay.proxy.RawClient.bytes;
import static io.pgrelay.proxy.RawClient.query;
import static io.pgrelay.proxy.RawClient.sync;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.proxy.RawClient.Message;
import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.CapturedLogs;
import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What a hostile or broken client sent to pgrelay, byte for byte, and what must happen instead of
 * what did: a clear error for that client, nothing seen by any other client.
 */
class HostileClientTest {

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres().withRelay(relay -> relay.set("pool.default_pool_size", 1));

    @RegisterExtension final CapturedLogs logs = new CapturedLogs();

    @AfterAll
    static void clearFault() {
        ClientSession.attachFaultForTests = null;
    }

    /** An empty Parse, as the probe sent it: no statement name, not even its terminator. */
    private static final byte[] EMPTY_PARSE = bytes('P', 0, 0, 0, 4);

    /** A Bind whose statement name "S_1" has no terminator. */
    private static final byte[] UNTERMINATED_BIND = bytes('B', 0, 0, 0, 8, 0, 'S', '_', '1');

    @Test
    void emptyParseIsRejectedBeforeAServerIsLeased() throws Exception {
        firstMessageIsRejectedAndSharesNothing(EMPTY_PARSE, "invalid string in message");
    }

    @Test
    void unterminatedBindNameIsRejectedBeforeAServerIsLeased() throws Exception {
        firstMessageIsRejectedAndSharesNothing(UNTERMINATED_BIND, "invalid string in message");
    }

    @Test
    void describeAndCloseWithoutANameAreRejected() throws Exception {
        firstMessageIsRejectedAndSharesNothing(bytes('D', 0, 0, 0, 4), "no data left in message");
        firstMessageIsRejectedAndSharesNothing(
                bytes('C', 0, 0, 0, 6, 'S', 'x'), "invalid string in message");
    }

    /**
     * The probe's sequence: A sends the malformed message; B opens a transaction; A queries. A must
     * get its error at once and its own answer later; B must never see A's row.
     */
    private void firstMessageIsRejectedAndSharesNothing(byte[] malformed, String expectedMessage)
            throws Exception {
        try (RawClient a = RawClient.app(servers.relay());
                RawClient b = RawClient.app(servers.relay())) {
            a.send(malformed);
            Message error = a.read();
            assertEquals('E', error.type(), "an ErrorResponse at once, not silence");
            assertEquals("08P01", error.fields().get('C'));
            assertEquals(expectedMessage, error.fields().get('M'));

            b.send(query("begin; select pg_backend_pid(), txid_current()"));
            List<Message> bTx = b.untilReady();
            String bTxid = dataRows(bTx).get(0).columns().get(1);
            assertEquals('T', (char) bTx.get(bTx.size() - 1).body()[0]);

            // Everything up to Sync is ignored after the error, as PostgreSQL does; then A is idle.
            a.send(query("select 'ignored until Sync'"));
            a.send(sync());
            List<Message> synced = a.untilReady();
            assertEquals(1, synced.size(), "only ReadyForQuery answers the Sync: " + synced);
            assertEquals('I', (char) synced.get(0).body()[0]);

            // The pool has one connection and B holds it: A waits, and B sees nothing of A.
            a.send(query("select 'row from A', pg_backend_pid(), txid_current()"));
            assertTrue(b.silentFor(300), "B's socket must not receive A's reply");
            b.send(query("select 'still B', txid_current()"));
            List<Message> bAgain = b.untilReady();
            assertEquals(List.of("still B", bTxid), dataRows(bAgain).get(0).columns());
            b.send(query("commit"));
            b.untilReady();

            List<Message> aReply = a.untilReady();
            List<String> row = dataRows(aReply).get(0).columns();
            assertEquals("row from A", row.get(0));
            assertNotEquals(bTxid, row.get(2), "A's query ran in a transaction of its own");
        }
    }

    @Test
    void malformedMessageInsideATransactionGoesToTheServerWhichFailsTheTransaction()
            throws Exception {
        try (RawClient a = RawClient.app(servers.relay())) {
            a.send(query("begin"));
            a.untilReady();
            a.send(EMPTY_PARSE);
            a.send(sync());
            List<Message> got = a.untilReady();
            assertEquals('E', got.get(0).type());
            assertEquals("08P01", got.get(0).fields().get('C'));
            assertEquals(
                    'E',
                    (char) got.get(got.size() - 1).body()[0],
                    "failed transaction, as without pgrelay");
            a.send(query("rollback"));
            a.untilReady();
            a.send(query("select 1"));
            assertEquals(List.of("1"), dataRows(a.untilReady()).get(0).columns());
        }
    }

    @Test
    void aFailureWhileTakingOverAServerClosesThatServerInsteadOfSharingIt() throws Exception {
        AtomicInteger victimPid = new AtomicInteger();
        ClientSession.attachFaultForTests =
                conn -> {
                    ClientSession.attachFaultForTests = null;
                    victimPid.set(conn.processId());
                    throw new IllegalStateException("injected failure after link");
                };
        try (RawClient a = RawClient.app(servers.relay())) {
            a.send(query("select 'A'"));
            Message fatal = a.read();
            assertEquals('E', fatal.type());
            assertEquals("XX000", fatal.fields().get('C'));
            assertEquals("FATAL", fatal.fields().get('S'));
            assertTrue(a.closedByServer());
        } finally {
            ClientSession.attachFaultForTests = null;
        }
        assertNotEquals(0, victimPid.get());
        try (Connection direct =
                servers.primary().connect(PgServer.APP_DB, "postgres", "postgres")) {
            Await.until(
                    "the server connection the failed client held to be closed",
                    Duration.ofSeconds(10),
                    () ->
                            RelayFixture.one(
                                            direct,
                                            "select count(*) from pg_stat_activity where pid = "
                                                    + victimPid.get())
                                    .equals("0"));
        }
        // The pool refills its slot and everyone else is served by connections of their own.
        try (RawClient b = RawClient.app(servers.relay());
                RawClient c = RawClient.app(servers.relay())) {
            b.send(query("begin; select txid_current()"));
            String bTxid = dataRows(b.untilReady()).get(0).columns().get(0);
            c.send(query("select 'C'"));
            assertTrue(b.silentFor(300));
            b.send(query("commit"));
            b.untilReady();
            assertEquals(List.of("C"), dataRows(c.untilReady()).get(0).columns());
            assertFalse(bTxid.isEmpty());
        }
    }

    /**
     * Parse of a named statement whose text is about {@code size} bytes, distinct per {@code n}.
     */
    static byte[] parse(String name, int n, int size) {
        String sql = "select " + n + ", '" + "x".repeat(size) + "'";
        java.io.ByteArrayOutputStream body = new java.io.ByteArrayOutputStream();
        body.writeBytes(
                (name + "\0" + sql + "\0").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        body.write(0);
        body.write(0);
        return RawClient.message('P', body.toByteArray());
    }

    /**
     * The probe prepared 1,000 statements of 50 kB per Sync until the heap was gone. Now the client
     * gets 53400 naming the limit, keeps its connection, and everyone else goes on.
     */
    @Test
    void preparedStatementsAreBoundedPerClientAndInTotal() throws Exception {
        try (RelayFixture limited =
                        RelayFixture.builder(servers.primary())
                                .set("limits.max_client_prepared_statements", 30)
                                .set("limits.max_client_prepared_statement_bytes", "1MiB")
                                .set("limits.prepared_statement_cache_size", "1500KiB")
                                .start();
                RawClient a = RawClient.app(limited);
                RawClient b = RawClient.app(limited)) {
            java.io.ByteArrayOutputStream batch = new java.io.ByteArrayOutputStream();
            for (int i = 0; i < 1000; i++) {
                batch.writeBytes(parse("a" + i, i, 50_000));
            }
            batch.writeBytes(sync());
            a.send(batch.toByteArray());
            List<Message> replies = a.untilReady();
            long parsed = replies.stream().filter(m -> m.type() == '1').count();
            Message error = replies.stream().filter(m -> m.type() == 'E').findFirst().orElseThrow();
            assertEquals(
                    20,
                    parsed,
                    "1 MiB holds 20 statements of 50 kB: " + replies.size() + " replies");
            assertEquals("53400", error.fields().get('C'));
            assertTrue(
                    error.fields().get('M').contains("limits.max_client_prepared_statement_bytes"),
                    error.fields().get('M'));

            // Names count too.
            java.io.ByteArrayOutputStream small = new java.io.ByteArrayOutputStream();
            for (int i = 0; i < 20; i++) {
                small.writeBytes(parse("s" + i, i, 1));
            }
            small.writeBytes(sync());
            a.send(small.toByteArray());
            replies = a.untilReady();
            assertEquals(10, replies.stream().filter(m -> m.type() == '1').count());
            assertTrue(
                    replies.stream()
                            .filter(m -> m.type() == 'E')
                            .findFirst()
                            .orElseThrow()
                            .fields()
                            .get('M')
                            .contains("limits.max_client_prepared_statements"));

            // The shared cache: B is within its own limits, but 1,500 KiB hold only 30 such texts.
            java.io.ByteArrayOutputStream other = new java.io.ByteArrayOutputStream();
            for (int i = 0; i < 20; i++) {
                other.writeBytes(parse("b" + i, 1000 + i, 50_000));
            }
            other.writeBytes(sync());
            b.send(other.toByteArray());
            replies = b.untilReady();
            assertTrue(replies.stream().filter(m -> m.type() == '1').count() < 20);
            assertTrue(
                    replies.stream()
                            .filter(m -> m.type() == 'E')
                            .findFirst()
                            .orElseThrow()
                            .fields()
                            .get('M')
                            .contains("limits.prepared_statement_cache_size"));

            // Both connections still work.
            a.send(query("select 'a works'"));
            assertEquals(List.of("a works"), dataRows(a.untilReady()).get(0).columns());
            b.send(query("select 'b works'"));
            assertEquals(List.of("b works"), dataRows(b.untilReady()).get(0).columns());
        }
    }

    /** A Query of exactly {@code size} bytes on the wire: a select padded with a comment. */
    static byte[] bigQuery(String label, int size) {
        String head = "select '" + label + "' /*";
        String tail = "*/\0";
        int padding = size - 5 - head.length() - tail.length();
        return RawClient.message(
                'Q',
                (head + "x".repeat(padding) + tail)
                        .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    }

    /**
     * Concurrent messages near max_message_size used to exhaust direct memory and lose a client to
     * a reset. Now a message that does not fit gets FATAL 53200 and the others go through.
     */
    @Test
    void largeMessagesThatDoNotFitInMemoryGetOutOfMemoryNotAReset() throws Exception {
        int size = 3 << 20;
        try (RelayFixture limited =
                        RelayFixture.builder(servers.primary())
                                .set("protocol.max_message_size", "4MiB")
                                .set("limits.max_buffered_message_bytes", "5MiB")
                                .start();
                RawClient a = RawClient.app(limited);
                RawClient b = RawClient.app(limited)) {
            byte[] first = bigQuery("first", size);
            a.send(java.util.Arrays.copyOf(first, 1 << 20));
            Await.until(
                    "the first message to be received in part",
                    Duration.ofSeconds(10),
                    () -> limited.relay().bufferedMessageBytes() == size);
            b.send(java.util.Arrays.copyOf(bigQuery("second", size), 1 << 16));
            Message refused = b.read();
            assertEquals('E', refused.type());
            assertEquals("53200", refused.fields().get('C'));
            assertEquals("FATAL", refused.fields().get('S'));
            assertTrue(
                    refused.fields().get('M').contains("limits.max_buffered_message_bytes"),
                    refused.fields().get('M'));

            a.send(java.util.Arrays.copyOfRange(first, 1 << 20, first.length));
            assertEquals(List.of("first"), dataRows(a.untilReady()).get(0).columns());
            assertEquals(0, limited.relay().bufferedMessageBytes());
            try (RawClient c = RawClient.app(limited)) {
                c.send(bigQuery("third", size));
                assertEquals(List.of("third"), dataRows(c.untilReady()).get(0).columns());
            }
        }
    }

    /**
     * 5,000 idle TCP connections used to take every max_client_conn slot for the 60 s login
     * timeout. Now they fill only the login slots, and a real client takes the slot of the oldest
     * one that has been logging in for over a second.
     */
    @Test
    void idleConnectionsCannotLockLoginsOut() throws Exception {
        List<java.net.Socket> idle = new java.util.ArrayList<>();
        try (RelayFixture limited =
                RelayFixture.builder(servers.primary())
                        .set("pool.max_client_conn", 3)
                        .set("limits.max_login_clients", 10)
                        .start()) {
            for (int i = 0; i < 40; i++) {
                idle.add(new java.net.Socket("127.0.0.1", limited.writePort()));
            }
            Thread.sleep(1200); // older than the second after which a login may be displaced
            List<Connection> clients = new java.util.ArrayList<>();
            try {
                for (int i = 0; i < 3; i++) {
                    clients.add(limited.app());
                    assertEquals("1", RelayFixture.one(clients.get(i), "select 1"));
                }
                assertEquals(3, limited.relay().clientCount(), "idle connections are not clients");
                org.postgresql.util.PSQLException full =
                        org.junit.jupiter.api.Assertions.assertThrows(
                                org.postgresql.util.PSQLException.class, limited::app);
                assertEquals("53300", full.getSQLState());
                assertTrue(full.getMessage().contains("max_client_conn"), full.getMessage());
            } finally {
                for (Connection c : clients) {
                    c.close();
                }
            }
            // The idle connections that lost their slot were told why before being closed.
            int closedWithError = 0;
            for (java.net.Socket s : idle) {
                s.setSoTimeout(200);
                try {
                    if (s.getInputStream().read() == 'E') {
                        closedWithError++;
                    }
                } catch (java.net.SocketTimeoutException stillWaiting) {
                    // kept its login slot
                }
            }
            assertTrue(
                    closedWithError >= 30, closedWithError + " of 40 idle connections were closed");
        } finally {
            for (java.net.Socket s : idle) {
                s.close();
            }
        }
    }

    /**
     * A user name that forges a log line, with terminal escapes, and a 9 kB one: escaped and cut.
     */
    @Test
    void clientChosenNamesCannotForgeOrFloodLogLines() throws Exception {
        String forged =
                "evil\n03:31:00.000 ERROR [main] i.pgrelay.proxy.PgRelay - FORGED \u001b[31mred\u001b[0m";
        for (String user : List.of(forged, "u".repeat(9000), "app")) {
            try (java.net.Socket s =
                    new java.net.Socket("127.0.0.1", servers.relay().writePort())) {
                ScramLogin.login(s, user, "wrong password", "appdb\r\nFORGED");
                org.junit.jupiter.api.Assertions.fail("logged in as " + user);
            } catch (java.io.IOException expected) {
                // login refused
            }
        }
        Await.until(
                "the failed logins to be logged",
                Duration.ofSeconds(5),
                () ->
                        logs.events().stream()
                                        .filter(
                                                e ->
                                                        e.getFormattedMessage()
                                                                .contains(
                                                                        "password authentication failed"))
                                        .count()
                                >= 3);
        for (ch.qos.logback.classic.spi.ILoggingEvent e : logs.events()) {
            String line = e.getFormattedMessage();
            assertFalse(
                    line.chars().anyMatch(c -> c < 0x20 || c == 0x7f),
                    "control character in: " + line);
            assertTrue(
                    line.length() < 1000,
                    "a client-chosen string was not cut: " + line.length() + " chars");
        }
        assertTrue(
                logs.events().stream()
                        .anyMatch(e -> e.getFormattedMessage().contains("\"evil\\n03:31:00.000")));
    }

    /**
     * Found by SessionFuzzTest: a Flush with a body (the server fails it and skips to Sync), then a
     * Query the server therefore never answers. pgrelay lost count of the replies and kept the
     * server connection leased forever, starving every other client of the pool.
     */
    @Test
    void aQueryTheServerMaySkipInsideABatchIsRefusedNotMiscounted() throws Exception {
        try (RawClient a = RawClient.app(servers.relay())) {
            a.send(
                    RawClient.message(
                            'H', "/*".getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
            a.send(RawClient.message('Q', new byte[0]));
            Message fatal = a.read();
            while (fatal.type() != 'E' || !"FATAL".equals(fatal.fields().get('S'))) {
                fatal = a.read(); // the server's own error for the Flush comes first
            }
            assertEquals("08P01", fatal.fields().get('C'));
            assertTrue(
                    fatal.fields().get('M').contains("send Sync first"), fatal.fields().get('M'));
            assertTrue(a.closedByServer());
        }
        try (RawClient b = RawClient.app(servers.relay())) {
            b.send(query("select 'pool not starved'"));
            assertEquals(List.of("pool not starved"), dataRows(b.untilReady()).get(0).columns());
        }
    }

    /**
     * Found by SessionFuzzTest: a Query, then a malformed Flush. The Query's ReadyForQuery handed
     * the server connection back while the server, having failed the Flush, was skipping to a Sync
     * only this client would send: the next client's requests were swallowed.
     */
    @Test
    void aBatchLeftOpenAfterAQueryKeepsItsServerConnectionUntilSync() throws Exception {
        try (RawClient a = RawClient.app(servers.relay());
                RawClient b = RawClient.app(servers.relay())) {
            a.send(query("select 'a'"));
            a.send(RawClient.message('H', new byte[] {'/'}));
            List<Message> first = a.untilReady();
            assertEquals(List.of("a"), dataRows(first).get(0).columns());
            Message flushError = a.read();
            assertEquals('E', flushError.type());
            assertEquals("08P01", flushError.fields().get('C'));

            b.send(query("select 'b'"));
            assertTrue(b.silentFor(300), "B waits: the only server connection is still A's");
            a.send(sync());
            assertEquals(1, a.untilReady().size());
            List<Message> bReply = b.untilReady();
            assertEquals(List.of("b"), dataRows(bReply).get(0).columns());
            assertTrue(
                    bReply.stream().noneMatch(m -> m.type() == 'E'), "B saw an error: " + bReply);
        }
    }

    /**
     * pgjdbc closes dead statements right before its next Query, with no Sync between: that works.
     */
    @Test
    void closeThenQueryWithoutSyncStillWorks() throws Exception {
        try (RawClient a = RawClient.app(servers.relay())) {
            a.send(RawClient.message('C', bytes('S', 'S', '_', '9', 0)));
            a.send(RawClient.message('C', bytes('P', 0)));
            a.send(query("select 'after close'"));
            List<Message> got = a.untilReady();
            assertEquals(List.of("after close"), dataRows(got).get(0).columns());
            assertEquals(
                    2,
                    got.stream().filter(m -> m.type() == '3').count(),
                    "two CloseComplete: " + got);
        }
    }

    static List<Message> dataRows(List<Message> messages) {
        return messages.stream().filter(m -> m.type() == 'D').toList();
    }
}
