package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Transaction pooling keeps each client's session settings (pool.track_session_state, on by
 * default): what a client SETs, RESETs or set_config()s follows it from transaction to transaction
 * as on a connection of its own, undone with its transaction or savepoint as PostgreSQL undoes it,
 * and never reaches another client. The relay has a single server connection, so clients A and B
 * really take turns on it: whatever one leaves there, the other would see unless pgrelay sets it
 * back. search_path and statement_timeout matter most: the server does not report them
 * (ParameterStatus), so only pgrelay's own tracking can carry them.
 *
 * <p>State that cannot be set again on another connection pins the client: {@link
 * SessionPinningTest}.
 */
class SessionStateTest {

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres()
                    .withRelay(
                            relay ->
                                    relay.set("pool.default_pool_size", 1)
                                            // A client wrongly holding the only connection makes
                                            // the other wait: fail in seconds, not minutes.
                                            .set("pool.query_wait_timeout", "10s"));

    /**
     * The database's own TimeZone, unlike the one pgjdbc sends at startup (the JVM's): a RESET that
     * went to the server connection's default instead of the client's would show it.
     */
    private static final String DATABASE_ZONE = "Pacific/Chatham";

    private static final String DEFAULT_PATH = "\"$user\", public";

    @BeforeAll
    static void databaseDefaults() {
        servers.primary()
                .psql(
                        PgServer.APP_DB,
                        "alter database appdb set timezone = '" + DATABASE_ZONE + "'");
    }

    @Test
    void settingsFollowEachClientAcrossTransactions() throws Exception {
        try (Connection a = client(servers.relay(), "a", "");
                Connection b = client(servers.relay(), "b", "")) {
            List<String> bDefaults = settings(b, "search_path", "TimeZone", "statement_timeout");
            assertEquals(DEFAULT_PATH, bDefaults.get(0));
            assertEquals("0", bDefaults.get(2));
            exec(
                    a,
                    "set search_path = a_schema, public",
                    "set timezone = 'Asia/Tokyo'",
                    "set statement_timeout = '42s'");
            List<String> aOwn = List.of("a_schema, public", "Asia/Tokyo", "42s");
            for (int i = 0; i < 3; i++) {
                assertEquals(
                        bDefaults, settings(b, "search_path", "TimeZone", "statement_timeout"));
                assertEquals(aOwn, settings(a, "search_path", "TimeZone", "statement_timeout"));
            }
            exec(
                    b,
                    "set search_path = b_schema",
                    "set session timezone = 'America/Lima'",
                    "set session statement_timeout = 1500");
            for (int i = 0; i < 3; i++) {
                assertEquals(aOwn, settings(a, "search_path", "TimeZone", "statement_timeout"));
                // An explicit transaction starts from A's values too.
                a.setAutoCommit(false);
                assertEquals(aOwn, settings(a, "search_path", "TimeZone", "statement_timeout"));
                a.commit();
                a.setAutoCommit(true);
                assertEquals(
                        List.of("b_schema", "America/Lima", "1500ms"),
                        settings(b, "search_path", "TimeZone", "statement_timeout"));
            }
        }
    }

    /**
     * SET SESSION CHARACTERISTICS (what pools such as HikariCP send for a read-only pool) is a
     * setting like any other: replayed for A, never seen by B, and nothing to pin.
     */
    @Test
    void sessionCharacteristicsFollowTheClient() throws Exception {
        try (Connection a = client(servers.relay(), "a", "");
                Connection b = otherClient()) {
            exec(
                    a,
                    "set session characteristics as transaction read only,"
                            + " isolation level repeatable read");
            for (int i = 0; i < 3; i++) {
                assertEquals(
                        List.of("on", "repeatable read"),
                        settings(
                                a,
                                "default_transaction_read_only",
                                "default_transaction_isolation"));
                assertEquals(
                        List.of("off", "read committed"),
                        settings(
                                b,
                                "default_transaction_read_only",
                                "default_transaction_isolation"));
                assertThrows(SQLException.class, () -> exec(a, "create table a_ro(x int)"));
            }
        }
    }

    @Test
    void setIsUndoneWithItsTransactionOrSavepoint() throws Exception {
        try (Connection a = client(servers.relay(), "a", "");
                Connection b = otherClient()) {
            exec(a, "set search_path = kept");
            a.setAutoCommit(false);

            exec(a, "set search_path = rolled_back");
            a.rollback();
            assertOtherClientsOwn(b);
            assertEquals("kept", one(a, "show search_path"));
            a.commit();

            // Aborted by an error, then rolled back.
            exec(a, "set search_path = aborted", "set statement_timeout = '5s'");
            assertThrows(SQLException.class, () -> exec(a, "select 1 / 0"));
            a.rollback();
            assertOtherClientsOwn(b);
            assertEquals(List.of("kept", "0"), settings(a, "search_path", "statement_timeout"));
            a.commit();

            // Rolled back to a savepoint: what was set before it stays, with the commit.
            exec(a, "set search_path = before_savepoint");
            Savepoint savepoint = a.setSavepoint("sp");
            exec(a, "set search_path = after_savepoint", "set statement_timeout = '5s'");
            a.rollback(savepoint);
            a.commit();
            assertOtherClientsOwn(b);
            assertEquals(
                    List.of("before_savepoint", "0"),
                    settings(a, "search_path", "statement_timeout"));
            a.commit();
        }
    }

    @Test
    void setIsKeptByCommitButSetLocalIsNot() throws Exception {
        try (Connection a = client(servers.relay(), "a", "");
                Connection b = otherClient()) {
            a.setAutoCommit(false);
            exec(a, "set statement_timeout = '9s'", "set local search_path = local_only");
            assertEquals("local_only", one(a, "show search_path"));
            a.commit();
            assertOtherClientsOwn(b);
            assertEquals(
                    List.of(DEFAULT_PATH, "9s"), settings(a, "search_path", "statement_timeout"));
            a.commit();

            // SET LOCAL over a SET in the same transaction: the SET's value is what remains.
            exec(a, "set search_path = session_value", "set local search_path = local_value");
            assertEquals("local_value", one(a, "show search_path"));
            a.commit();
            assertOtherClientsOwn(b);
            assertEquals("session_value", one(a, "show search_path"));
            a.commit();

            // A SET under a savepoint that is released is the transaction's, kept at commit.
            Savepoint savepoint = a.setSavepoint("sp");
            exec(a, "set timezone = 'Asia/Tokyo'");
            a.releaseSavepoint(savepoint);
            a.commit();
            a.setAutoCommit(true);
            assertOtherClientsOwn(b);
            assertEquals("Asia/Tokyo", one(a, "show timezone"));
        }
    }

    /**
     * RESET, SET ... TO DEFAULT and RESET ALL go back to what the client connected with (pgjdbc's
     * TimeZone, statement_timeout from options -c), not to the server connection's defaults:
     * checked against the same steps on a direct connection. By default pgjdbc SETs
     * application_name after logging in, so RESET ALL clears it, directly as through pgrelay; told
     * the server is new enough (assumeMinServerVersion) it sends it and extra_float_digits as
     * startup parameters, and RESET ALL keeps them.
     */
    @Test
    void resetReturnsToTheClientsStartupValues() throws Exception {
        resetsAsDirectly(Map.of(), "");
        resetsAsDirectly(Map.of("assumeMinServerVersion", "15"), "reset-a");
    }

    private static void resetsAsDirectly(Map<String, String> extra, String appNameAfterResetAll)
            throws Exception {
        String[] names = {
            "search_path", "TimeZone", "statement_timeout", "extra_float_digits", "application_name"
        };
        Map<String, String> props = props("reset-a", "-c statement_timeout=7s");
        props.putAll(extra);
        RelayFixture relay = servers.relay();
        try (Connection a =
                        relay.connect(
                                relay.writePort(),
                                PgServer.APP_DB,
                                PgServer.APP_USER,
                                PgServer.APP_PASSWORD,
                                props);
                Connection direct =
                        relay.connect(
                                servers.primary().port(),
                                PgServer.APP_DB,
                                PgServer.APP_USER,
                                PgServer.APP_PASSWORD,
                                props);
                Connection b = otherClient()) {
            List<String> start = settings(a, names);
            assertEquals(settings(direct, names), start);
            String zone = start.get(1);
            assertNotEquals(DATABASE_ZONE, zone);
            assertEquals("7s", start.get(2));

            List<String> set =
                    stepThenB(
                            a,
                            direct,
                            b,
                            names,
                            "set timezone = 'Pacific/Auckland'",
                            "set statement_timeout = '1min'",
                            "set search_path = elsewhere",
                            "set extra_float_digits = 0",
                            "set application_name = 'renamed'");
            assertEquals(List.of("elsewhere", "Pacific/Auckland", "1min", "0", "renamed"), set);
            assertEquals(zone, stepThenB(a, direct, b, names, "reset timezone").get(1));
            assertEquals(
                    "7s",
                    stepThenB(a, direct, b, names, "set statement_timeout to default").get(2));
            List<String> reset = stepThenB(a, direct, b, names, "reset all");
            assertEquals(List.of(DEFAULT_PATH, zone, "7s"), reset.subList(0, 3));
            assertEquals(appNameAfterResetAll, reset.get(4));

            // B's RESET ALL: its own startup values, not A's.
            exec(b, "reset all");
            assertEquals(
                    List.of(DEFAULT_PATH, zone, "0"),
                    settings(b, "search_path", "TimeZone", "statement_timeout"));
            assertEquals(reset, settings(a, names));
        }
    }

    /**
     * psql's TimeZone (PGTZ, a startup parameter) and options (PGOPTIONS) are what its RESETs go
     * back to, each -c its own transaction, after another client left its values on the connection.
     */
    @Test
    void psqlResetsToItsStartupValuesAsDirectly() throws Exception {
        try (Connection b = otherClient()) {
            List<String> relayed = psqlResets(servers.relay().writePort());
            assertEquals(
                    List.of("America/Lima", "Asia/Kolkata", "7s", DEFAULT_PATH, "Asia/Kolkata"),
                    relayed);
            assertEquals(psqlResets(servers.primary().port()), relayed);
            assertOtherClientsOwn(b);
        }
    }

    @Test
    void setConfigIsTrackedUnlessLocal() throws Exception {
        try (Connection a = client(servers.relay(), "a", "");
                Connection b = otherClient()) {
            assertEquals("a, b", one(a, "select set_config('search_path', 'a, b', false)"));
            assertOtherClientsOwn(b);
            // A list: set back as one quoted name, it would read "a, b" (with the quotes).
            assertEquals("a, b", one(a, "show search_path"));

            assertEquals("tx_only", one(a, "select set_config('search_path', 'tx_only', true)"));
            assertOtherClientsOwn(b);
            assertEquals("a, b", one(a, "show search_path"));

            a.setAutoCommit(false);
            one(a, "select set_config('statement_timeout', '5s', true)");
            a.commit();
            one(a, "select set_config('statement_timeout', '6s', false)");
            a.rollback();
            a.setAutoCommit(true);
            assertOtherClientsOwn(b);
            assertEquals(List.of("a, b", "0"), settings(a, "search_path", "statement_timeout"));

            one(a, "select set_config('statement_timeout', '8s', false)");
            assertOtherClientsOwn(b);
            assertEquals("8s", one(a, "show statement_timeout"));
        }
    }

    /** PgBouncer's behaviour, kept behind the switch: a SET stays on the server connection. */
    @Test
    void withoutTrackingASetReachesTheNextClient() throws Exception {
        try (RelayFixture untracked =
                        RelayFixture.builder(servers.primary())
                                .set("pool.default_pool_size", 1)
                                .set("pool.query_wait_timeout", "10s")
                                .set("pool.track_session_state", false)
                                .start();
                Connection a = client(untracked, "a", "");
                Connection b = client(untracked, "b", "")) {
            exec(a, "set search_path = leaked");
            assertEquals("leaked", one(b, "show search_path"));
            // Nor is anything pinned: A's temp table is on the connection B uses next.
            exec(a, "create temp table leaked_t(x int)");
            assertEquals("t", one(b, "select to_regclass('pg_temp.leaked_t') is not null"));
        }
    }

    // ------------------------------------------------------------------------------------------

    static Map<String, String> props(String applicationName, String options) {
        Map<String, String> props = new HashMap<>();
        props.put("prepareThreshold", "0");
        props.put("ApplicationName", applicationName);
        if (!options.isEmpty()) {
            props.put("options", options);
        }
        return props;
    }

    /** pgjdbc through the relay's write port, named (application_name) for the console. */
    static Connection client(RelayFixture relay, String applicationName, String options)
            throws SQLException {
        return relay.connect(
                relay.writePort(),
                PgServer.APP_DB,
                PgServer.APP_USER,
                PgServer.APP_PASSWORD,
                props(applicationName, options));
    }

    /** Each statement on its own: in autocommit mode, each its own transaction. */
    static void exec(Connection c, String... sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            for (String s : sql) {
                st.execute(s);
            }
        }
    }

    /** current_setting of each name, in one query. */
    static List<String> settings(Connection c, String... names) throws SQLException {
        StringBuilder sql = new StringBuilder("select ");
        for (int i = 0; i < names.length; i++) {
            sql.append(i == 0 ? "" : ", ").append("current_setting('").append(names[i]);
            sql.append("')");
        }
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql.toString())) {
            rs.next();
            List<String> values = new ArrayList<>();
            for (int i = 1; i <= names.length; i++) {
                values.add(rs.getString(i));
            }
            return values;
        }
    }

    /** B: a client with values of its own, sharing the server connection with A. */
    private static Connection otherClient() throws SQLException {
        Connection b = client(servers.relay(), "b", "");
        exec(
                b,
                "set search_path = b_own",
                "set timezone = 'Asia/Tokyo'",
                "set statement_timeout = '2s'");
        return b;
    }

    /** B's turn on the shared server connection: its own values, whatever A did. */
    private static void assertOtherClientsOwn(Connection b) throws SQLException {
        assertEquals(
                List.of("b_own", "Asia/Tokyo", "2s"),
                settings(b, "search_path", "TimeZone", "statement_timeout"));
    }

    /**
     * Runs the statements as A and on A's direct twin, lets B take a turn, and returns A's settings
     * after checking them against the twin's.
     */
    private static List<String> stepThenB(
            Connection a, Connection direct, Connection b, String[] names, String... sql)
            throws SQLException {
        exec(a, sql);
        exec(direct, sql);
        assertOtherClientsOwn(b);
        List<String> seen = settings(a, names);
        assertEquals(settings(direct, names), seen, "as directly, after " + List.of(sql));
        return seen;
    }

    /** psql with its own TimeZone and statement_timeout: what each SHOW printed. */
    private static List<String> psqlResets(int port) {
        return RelayFixture.psqlLines(
                port,
                Map.of("PGTZ", "Asia/Kolkata", "PGOPTIONS", "-c statement_timeout=7s"),
                List.of(
                        "set timezone = 'America/Lima'",
                        "set statement_timeout = '1min'",
                        "set search_path = psql_path",
                        "show timezone",
                        "reset timezone",
                        "show timezone",
                        "reset all",
                        "show statement_timeout",
                        "show search_path",
                        "show timezone"));
    }
}
