package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import io.pgrelay.auth.ScramClient;
import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.CapturedLogs;
import io.pgrelay.testkit.FreePorts;
import io.pgrelay.testkit.PgServer;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.postgresql.util.PSQLException;
import org.slf4j.LoggerFactory;

/**
 * auth_query against a real PostgreSQL 15: roles created, changed and dropped while pgrelay runs,
 * SCRAM and md5 secrets, unknown roles answered like wrong passwords, a SECURITY DEFINER lookup
 * function in its own schema that counts its calls (a sequence), failures of the lookup itself, and
 * no password or secret in any log line (DEBUG included).
 */
class AuthQueryTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    @RegisterExtension final CapturedLogs logs = new CapturedLogs();

    static final String AUTH_USER = "pgrelay_auth";
    static final String AUTH_PASSWORD = "auth-user-pw-7f3a9c";
    static final String LOOKUP = "SELECT uname, phash FROM pgrelay.user_lookup($1)";

    /** Every password and secret the tests use: none may appear in a log line. */
    static final Set<String> SECRETS = ConcurrentHashMap.newKeySet();

    private static final Logger PGRELAY_LOG = (Logger) LoggerFactory.getLogger("io.pgrelay");
    private static Level savedLevel;

    @BeforeAll
    static void lookupFunction() {
        savedLevel = PGRELAY_LOG.getLevel();
        PGRELAY_LOG.setLevel(Level.DEBUG);
        SECRETS.add(AUTH_PASSWORD);
        // PgBouncer's documented setup: a SECURITY DEFINER function owned by a superuser, in a
        // schema of its own, callable by auth_user alone. It also counts its calls.
        servers.primary()
                .psql(
                        PgServer.APP_DB,
                        "CREATE ROLE "
                                + AUTH_USER
                                + " LOGIN PASSWORD '"
                                + AUTH_PASSWORD
                                + "';\n"
                                + "CREATE SCHEMA pgrelay;\n"
                                + "CREATE SEQUENCE pgrelay.lookups;\n"
                                + "CREATE FUNCTION pgrelay.user_lookup(i_username text,"
                                + " OUT uname text, OUT phash text) RETURNS record"
                                + " LANGUAGE plpgsql SECURITY DEFINER"
                                + " SET search_path = pg_catalog, pg_temp AS $$\n"
                                + "BEGIN\n"
                                + "  PERFORM nextval('pgrelay.lookups');\n"
                                + "  SELECT usename, passwd INTO uname, phash"
                                + " FROM pg_catalog.pg_shadow WHERE usename = i_username;\n"
                                + "  RETURN;\n"
                                + "END $$;\n"
                                + "REVOKE ALL ON FUNCTION pgrelay.user_lookup(text) FROM PUBLIC;\n"
                                + "GRANT USAGE ON SCHEMA pgrelay TO "
                                + AUTH_USER
                                + ";\n"
                                + "GRANT EXECUTE ON FUNCTION pgrelay.user_lookup(text) TO "
                                + AUTH_USER
                                + ";");
    }

    @AfterAll
    static void restoreLogLevel() {
        PGRELAY_LOG.setLevel(savedLevel);
    }

    @AfterEach
    void noSecretInTheLog() {
        assertFalse(logs.events().isEmpty(), "nothing logged: the check below would be empty");
        for (ILoggingEvent e : logs.events()) {
            String text =
                    e.getFormattedMessage()
                            + (e.getThrowableProxy() == null
                                    ? ""
                                    : ThrowableProxyUtil.asString(e.getThrowableProxy()));
            for (String secret : SECRETS) {
                assertFalse(text.contains(secret), "a log line shows a secret: " + text);
            }
        }
    }

    // ------------------------------------------------------------------ helpers

    /** A relay with auth_query through the lookup function; auth_file lists auth_user only. */
    static RelayFixture.Builder relay() {
        return RelayFixture.builder(servers.primary())
                .userlist("\"" + AUTH_USER + "\" \"" + AUTH_PASSWORD + "\"\n")
                .set("auth.auth_user", AUTH_USER)
                .set("auth.auth_query", LOOKUP)
                .set("auth.auth_query_cache_time", "1s")
                .set("pool.server_connect_timeout", "3s");
    }

    /** Creates a LOGIN role with this password stored as {@code encryption} says. */
    static void createRole(String name, String password, String encryption) {
        servers.primary()
                .psql(
                        PgServer.POSTGRES_DB,
                        "SET password_encryption = '"
                                + encryption
                                + "';\nCREATE ROLE "
                                + name
                                + " LOGIN PASSWORD '"
                                + password
                                + "';");
        remember(name, password);
    }

    static void alterPassword(String name, String password) {
        servers.primary()
                .psql(PgServer.POSTGRES_DB, "ALTER ROLE " + name + " PASSWORD '" + password + "';");
        remember(name, password);
    }

    /** The password, and the secret PostgreSQL keeps for it with its parts, are never logged. */
    private static void remember(String name, String password) {
        SECRETS.add(password);
        String secret =
                servers.primary()
                        .psql(
                                PgServer.POSTGRES_DB,
                                "SELECT rolpassword FROM pg_authid WHERE rolname = '" + name + "'");
        SECRETS.add(secret);
        for (String part : secret.split("[$:]")) {
            if (part.length() >= 16) {
                SECRETS.add(part);
            }
        }
    }

    static void dropRole(String name) {
        servers.primary().psql(PgServer.POSTGRES_DB, "DROP ROLE " + name + ";");
    }

    /** Calls of the lookup function so far (the sequence counts them). */
    static long lookups() {
        return Long.parseLong(
                servers.primary()
                        .psql(
                                PgServer.APP_DB,
                                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END"
                                        + " FROM pgrelay.lookups"));
    }

    static void assertLogsIn(RelayFixture relay, String user, String password) throws Exception {
        try (Connection c = relay.connect(user, password)) {
            assertEquals(user, one(c, "select current_user"));
        }
    }

    static PSQLException refused(RelayFixture relay, String user, String password) {
        return assertThrows(PSQLException.class, () -> relay.connect(user, password).close());
    }

    /**
     * One login attempt: pgjdbc's default sslmode=prefer tries a second time after a 28000 (a
     * pg_hba.conf line may want the other kind of connection).
     */
    static PSQLException refusedOnce(RelayFixture relay, String user, String password) {
        return assertThrows(
                PSQLException.class,
                () ->
                        relay.connect(
                                        relay.writePort(),
                                        PgServer.APP_DB,
                                        user,
                                        password,
                                        Map.of("sslmode", "disable"))
                                .close());
    }

    static void assertWrongPassword(RelayFixture relay, String user, String password) {
        PSQLException e = refused(relay, user, password);
        assertEquals("28P01", e.getSQLState(), e.getMessage());
        assertEquals(
                "FATAL: password authentication failed for user \"" + user + "\"",
                e.getServerErrorMessage().toString().lines().findFirst().orElseThrow());
    }

    private boolean logged(Level level, String part) {
        return logs.events().stream()
                .anyMatch(e -> e.getLevel() == level && e.getFormattedMessage().contains(part));
    }

    // ------------------------------------------------------------------ tests

    @Test
    void roleCreatedAfterStartLogsInWithItsScramSecret() throws Exception {
        try (RelayFixture relay = relay().start()) {
            createRole("aq_scram", "scram-pw-31b7", "scram-sha-256");
            // pgrelay checks the client's proof against the looked-up secret, then logs in to
            // PostgreSQL with the ClientKey that proof revealed.
            assertLogsIn(relay, "aq_scram", "scram-pw-31b7");
            try (Connection c =
                    relay.connect(
                            relay.readPort(),
                            PgServer.APP_DB,
                            "aq_scram",
                            "scram-pw-31b7",
                            Map.of("prepareThreshold", "0"))) {
                assertEquals("aq_scram", one(c, "select session_user"));
            }
            assertWrongPassword(relay, "aq_scram", "not-the-password");
            // Lookups ran as auth_user in the client's database, on a pool of pgrelay's own.
            assertTrue(
                    relay.relay().pools().all().stream()
                            .anyMatch(
                                    p ->
                                            p.key().user().equals(AUTH_USER)
                                                    && p.key().database().equals(PgServer.APP_DB)),
                    "no pool for auth_user");
            assertTrue(relay.relay().metrics().authQueries(AuthQuery.Result.FOUND) >= 1);
        }
    }

    @Test
    void md5SecretServesMd5ClientsAndPgrelaysOwnMd5Login() throws Exception {
        // The testkit's pg_hba.conf lets md5user log in with md5: re-create it while pgrelay runs.
        try (RelayFixture relay = relay().set("auth.auth_type", "md5").start()) {
            dropRole(PgServer.MD5_USER);
            createRole(PgServer.MD5_USER, "md5-pw-5e1d", "md5");
            assertTrue(
                    servers.primary()
                            .psql(
                                    PgServer.POSTGRES_DB,
                                    "SELECT rolpassword FROM pg_authid WHERE rolname = '"
                                            + PgServer.MD5_USER
                                            + "'")
                            .startsWith("md5"));
            assertLogsIn(relay, PgServer.MD5_USER, "md5-pw-5e1d");
            assertWrongPassword(relay, PgServer.MD5_USER, "md5-wrong");
            // md5 mode asks a user whose secret is SCRAM for SCRAM, as with auth_file.
            createRole("aq_scram_md5", "scram-pw-8c21", "scram-sha-256");
            assertLogsIn(relay, "aq_scram_md5", "scram-pw-8c21");
        }
    }

    @Test
    void unknownRoleAndRoleWithoutPasswordAreAnsweredLikeAWrongPassword() throws Exception {
        try (RelayFixture relay = relay().start()) {
            createRole("aq_known", "known-pw-4a4a", "scram-sha-256");
            servers.primary().psql(PgServer.POSTGRES_DB, "CREATE ROLE aq_nopass LOGIN;");
            assertWrongPassword(relay, "aq_ghost", "whatever");
            assertWrongPassword(relay, "aq_nopass", "whatever");
            assertWrongPassword(relay, "aq_known", "whatever");
            // The same SCRAM steps and the same error for a role that does not exist (the mock
            // exchange) as for a wrong password.
            List<String> ghost = rawScramLogin(relay, "aq_ghost", "whatever");
            List<String> wrong = rawScramLogin(relay, "aq_known", "whatever");
            assertEquals(
                    List.of("R10", "R11", "E FATAL 28P01 password authentication failed for user"),
                    wrong);
            assertEquals(wrong, ghost);
            assertTrue(relay.relay().metrics().authQueries(AuthQuery.Result.NOT_FOUND) >= 2);
        }
    }

    @Test
    void changedAndDroppedRolesCountWithinTheCacheTime() throws Exception {
        try (RelayFixture relay = relay().start()) {
            createRole("aq_temp", "temp-pw-one", "scram-sha-256");
            assertLogsIn(relay, "aq_temp", "temp-pw-one");
            alterPassword("aq_temp", "temp-pw-two");
            Await.until(
                    "the new password to work (auth_query_cache_time 1s)",
                    Duration.ofSeconds(10),
                    () -> {
                        try {
                            assertLogsIn(relay, "aq_temp", "temp-pw-two");
                            return true;
                        } catch (PSQLException e) {
                            return false;
                        }
                    });
            assertWrongPassword(relay, "aq_temp", "temp-pw-one");
            dropRole("aq_temp");
            Await.until(
                    "the dropped role to be refused",
                    Duration.ofSeconds(10),
                    () -> "28P01".equals(refused(relay, "aq_temp", "temp-pw-two").getSQLState()));
            assertWrongPassword(relay, "aq_temp", "temp-pw-two");
        }
    }

    @Test
    void userInAuthFileWinsAndIsNeverLookedUp() throws Exception {
        createRole("aq_file", "shared-pw-9d0e", "scram-sha-256");
        try (RelayFixture relay =
                relay().userlist(
                                "\""
                                        + AUTH_USER
                                        + "\" \""
                                        + AUTH_PASSWORD
                                        + "\"\n\"aq_file\" \"shared-pw-9d0e\"\n")
                        .start()) {
            long before = lookups();
            assertLogsIn(relay, "aq_file", "shared-pw-9d0e");
            alterPassword("aq_file", "pg-only-pw-0b3c");
            Thread.sleep(1500); // past auth_query_cache_time: the file still decides
            assertWrongPassword(relay, "aq_file", "pg-only-pw-0b3c");
            assertEquals(before, lookups());
            assertEquals(0, relay.relay().metrics().authQueries(AuthQuery.Result.FOUND));
        }
    }

    @Test
    void aBurstOfLoginsOfOneUserIsOneQuery() throws Exception {
        int clients = 24;
        try (RelayFixture relay = relay().set("auth.auth_query_cache_time", "30s").start()) {
            createRole("aq_burst", "burst-pw-77aa", "scram-sha-256");
            long before = lookups();
            ExecutorService pool = Executors.newFixedThreadPool(clients);
            try {
                CountDownLatch go = new CountDownLatch(1);
                List<Future<String>> logins = new ArrayList<>();
                for (int i = 0; i < clients; i++) {
                    logins.add(
                            pool.submit(
                                    () -> {
                                        go.await();
                                        try (Connection c =
                                                relay.connect("aq_burst", "burst-pw-77aa")) {
                                            return one(c, "select current_user");
                                        }
                                    }));
                }
                go.countDown();
                for (Future<String> login : logins) {
                    assertEquals("aq_burst", login.get());
                }
            } finally {
                pool.shutdownNow();
            }
            assertEquals(1, lookups() - before, "lookups for " + clients + " logins");
            assertEquals(1, relay.relay().metrics().authQueries(AuthQuery.Result.FOUND));
        }
    }

    @Test
    void cacheTimeZeroAsksEveryTime() throws Exception {
        try (RelayFixture relay = relay().set("auth.auth_query_cache_time", "0").start()) {
            createRole("aq_nocache", "nocache-pw-1f1f", "scram-sha-256");
            long before = lookups();
            assertLogsIn(relay, "aq_nocache", "nocache-pw-1f1f");
            assertLogsIn(relay, "aq_nocache", "nocache-pw-1f1f");
            assertEquals(2, lookups() - before);
        }
    }

    @Test
    void defaultQueryInAuthDbnameAsSuperuser() throws Exception {
        try (RelayFixture relay =
                RelayFixture.builder(servers.primary())
                        .userlist("\"postgres\" \"postgres\"\n")
                        .set("auth.auth_user", PgServer.SUPERUSER)
                        .set("auth.auth_dbname", PgServer.POSTGRES_DB)
                        .start()) {
            createRole("aq_default", "default-pw-6b6b", "scram-sha-256");
            assertLogsIn(relay, "aq_default", "default-pw-6b6b");
            assertTrue(
                    relay.relay().pools().all().stream()
                            .anyMatch(
                                    p ->
                                            p.key().user().equals(PgServer.SUPERUSER)
                                                    && p.key()
                                                            .database()
                                                            .equals(PgServer.POSTGRES_DB)),
                    "no auth_user pool in auth_dbname");
        }
    }

    @Test
    void aFailingQueryIsAClearError() throws Exception {
        // auth_user may not read pg_shadow: the default query fails with 42501.
        try (RelayFixture relay =
                relay().set(
                                "auth.auth_query",
                                "SELECT usename, passwd FROM pg_shadow WHERE usename=$1")
                        .start()) {
            createRole("aq_denied", "denied-pw-2c2c", "scram-sha-256");
            PSQLException e = refusedOnce(relay, "aq_denied", "denied-pw-2c2c");
            assertEquals("28000", e.getSQLState(), e.getMessage());
            assertTrue(e.getMessage().contains("user lookup (auth_query) failed"), e.getMessage());
            assertTrue(logged(Level.WARN, "permission denied"), "no WARN naming the cause");
            assertEquals(1, relay.relay().metrics().authQueries(AuthQuery.Result.FAILED));
            // A failure is not cached: the next login asks again.
            refusedOnce(relay, "aq_denied", "denied-pw-2c2c");
            assertEquals(2, relay.relay().metrics().authQueries(AuthQuery.Result.FAILED));
        }
    }

    @Test
    void authUserRefusedByTheServerIsAClearError() throws Exception {
        try (RelayFixture relay =
                relay().userlist("\"" + AUTH_USER + "\" \"not-its-password\"\n").start()) {
            SECRETS.add("not-its-password");
            createRole("aq_refused", "refused-pw-3d3d", "scram-sha-256");
            PSQLException e = refused(relay, "aq_refused", "refused-pw-3d3d");
            assertEquals("28000", e.getSQLState(), e.getMessage());
            assertTrue(e.getMessage().contains("user lookup (auth_query) failed"), e.getMessage());
            assertTrue(
                    logged(Level.WARN, "password authentication failed for user \"" + AUTH_USER),
                    "no WARN naming the cause");
        }
    }

    @Test
    void authDatabaseDownFailsFast() throws Exception {
        int nothingThere = FreePorts.next();
        try (RelayFixture relay =
                relay().set("backends.primary", "127.0.0.1:" + nothingThere).start()) {
            long start = System.nanoTime();
            PSQLException e = refused(relay, "aq_anyone", "whatever");
            assertEquals("08006", e.getSQLState(), e.getMessage());
            assertTrue(e.getMessage().contains("user lookup (auth_query) failed"), e.getMessage());
            assertTrue(Duration.ofNanos(System.nanoTime() - start).toMillis() < 3000);
            assertTrue(logged(Level.WARN, "could not connect"), "no WARN naming the cause");
        }
    }

    @Test
    void aServerThatNeverAnswersFailsWithinServerConnectTimeout() throws Exception {
        try (BlackHole hole = new BlackHole();
                RelayFixture relay =
                        relay().set("backends.primary", "127.0.0.1:" + hole.port())
                                .set("pool.server_connect_timeout", "1s")
                                .start()) {
            long start = System.nanoTime();
            PSQLException e = refused(relay, "aq_anyone", "whatever");
            long millis = Duration.ofNanos(System.nanoTime() - start).toMillis();
            assertEquals("08006", e.getSQLState(), e.getMessage());
            assertTrue(e.getMessage().contains("user lookup (auth_query) failed"), e.getMessage());
            assertTrue(millis >= 900 && millis < 5000, "took " + millis + " ms");
            assertTrue(logged(Level.WARN, "server_connect_timeout"), "no WARN naming the cause");
        }
    }

    @Test
    void clientLoginTimeoutStillAppliesAndClientsMayLeaveDuringALookup() throws Exception {
        try (BlackHole hole = new BlackHole();
                RelayFixture relay =
                        relay().set("backends.primary", "127.0.0.1:" + hole.port())
                                .set("pool.server_connect_timeout", "3s")
                                .set("pool.client_login_timeout", "1s")
                                .start()) {
            // One client leaves while its lookup runs...
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), relay.writePort())) {
                sendStartup(new DataOutputStream(s.getOutputStream()), "aq_leaver");
            }
            // ... another waits, and client_login_timeout ends its login first.
            long start = System.nanoTime();
            PSQLException e = refused(relay, "aq_waiter", "whatever");
            long millis = Duration.ofNanos(System.nanoTime() - start).toMillis();
            assertTrue(e.getMessage().contains("client_login_timeout"), e.getMessage());
            assertTrue(millis < 2900, "took " + millis + " ms");
            // Both lookups end (server_connect_timeout) with nobody left to tell.
            Await.until(
                    "the lookups to fail",
                    Duration.ofSeconds(10),
                    () -> relay.relay().metrics().authQueries(AuthQuery.Result.FAILED) == 2);
            Thread.sleep(200);
            List<String> errors =
                    logs.events().stream()
                            .filter(ev -> ev.getLevel() == Level.ERROR)
                            .map(ILoggingEvent::getFormattedMessage)
                            .collect(Collectors.toList());
            assertEquals(List.of(), errors);
            assertEquals(0, relay.relay().clientCount());
        }
    }

    @Test
    void setOnTheConsoleTurnsAuthQueryOnAndOff() throws Exception {
        try (RelayFixture relay =
                RelayFixture.builder(servers.primary())
                        .userlist("\"" + AUTH_USER + "\" \"" + AUTH_PASSWORD + "\"\n")
                        .start()) {
            createRole("aq_reload", "reload-pw-4e4e", "scram-sha-256");
            assertWrongPassword(relay, "aq_reload", "reload-pw-4e4e"); // not in auth_file
            assertEquals(null, relay.relay().set("auth.auth_query", LOOKUP));
            assertEquals(null, relay.relay().set("auth_user", AUTH_USER));
            assertLogsIn(relay, "aq_reload", "reload-pw-4e4e");
            assertEquals(null, relay.relay().set("auth_user", ""));
            assertWrongPassword(relay, "aq_reload", "reload-pw-4e4e");
        }
    }

    @Test
    void adminConsoleUsersStillComeFromTheAuthFile() throws Exception {
        try (RelayFixture relay =
                relay().userlist(
                                "\""
                                        + AUTH_USER
                                        + "\" \""
                                        + AUTH_PASSWORD
                                        + "\"\n\"postgres\" \"postgres\"\n")
                        .set("admin.admin_users", List.of("postgres", "aq_console"))
                        .start()) {
            try (Connection c =
                    relay.connect(
                            relay.writePort(),
                            "pgbouncer",
                            "postgres",
                            "postgres",
                            Map.of("preferQueryMode", "simple"))) {
                List<String> users = RelayFixture.column(c, "SHOW USERS");
                assertTrue(users.contains("postgres"), users.toString());
                assertFalse(users.contains("aq_console"), users.toString());
            }
            // A console login is never looked up: a role only PostgreSQL knows is refused.
            createRole("aq_console", "console-pw-5f5f", "scram-sha-256");
            long before = lookups();
            PSQLException e =
                    assertThrows(
                            PSQLException.class,
                            () ->
                                    relay.connect(
                                                    relay.writePort(),
                                                    "pgbouncer",
                                                    "aq_console",
                                                    "console-pw-5f5f",
                                                    Map.of("preferQueryMode", "simple"))
                                            .close());
            assertEquals("28P01", e.getSQLState(), e.getMessage());
            assertEquals(before, lookups());
        }
    }

    // ------------------------------------------------------------------ raw protocol

    /**
     * A SCRAM login by hand: what pgrelay sent, as "R" + authentication code, up to the error ("E
     * severity sqlstate message", the user name cut off the message).
     */
    static List<String> rawScramLogin(RelayFixture relay, String user, String password)
            throws IOException {
        List<String> seen = new ArrayList<>();
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), relay.writePort())) {
            s.setSoTimeout(10_000);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            DataInputStream in = new DataInputStream(s.getInputStream());
            sendStartup(out, user);
            ScramClient scram = ScramClient.withPassword(password);
            while (true) {
                char type = (char) in.readUnsignedByte();
                byte[] body = new byte[in.readInt() - 4];
                in.readFully(body);
                if (type == 'E') {
                    Map<Character, String> fields = new java.util.HashMap<>();
                    for (String f : new String(body, StandardCharsets.UTF_8).split("\0")) {
                        if (!f.isEmpty()) {
                            fields.put(f.charAt(0), f.substring(1));
                        }
                    }
                    seen.add(
                            "E "
                                    + fields.get('S')
                                    + " "
                                    + fields.get('C')
                                    + " "
                                    + fields.get('M').replace(" \"" + user + "\"", ""));
                    return seen;
                }
                if (type != 'R') {
                    seen.add(String.valueOf(type));
                    return seen;
                }
                int code = ByteBuffer.wrap(body).getInt();
                seen.add("R" + code);
                if (code != 10 && code != 11) {
                    return seen;
                }
                ScramLogin.answer(
                        out,
                        scram,
                        code,
                        new String(body, 4, body.length - 4, StandardCharsets.UTF_8));
            }
        }
    }

    static void sendStartup(DataOutputStream out, String user) throws IOException {
        out.write(RawClient.startupPacket(3 << 16, "user", user, "database", PgServer.APP_DB));
        out.flush();
    }

    /** A "server" that accepts connections and never says a word. */
    static final class BlackHole implements AutoCloseable {
        private final ServerSocket socket;
        private final List<Socket> accepted = new java.util.concurrent.CopyOnWriteArrayList<>();
        private final Thread acceptor;

        BlackHole() throws IOException {
            socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
            acceptor =
                    new Thread(
                            () -> {
                                try {
                                    while (true) {
                                        accepted.add(socket.accept());
                                    }
                                } catch (IOException closed) {
                                    // done
                                }
                            },
                            "black-hole");
            acceptor.setDaemon(true);
            acceptor.start();
        }

        int port() {
            return socket.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            socket.close();
            for (Socket s : accepted) {
                s.close();
            }
        }
    }
}
