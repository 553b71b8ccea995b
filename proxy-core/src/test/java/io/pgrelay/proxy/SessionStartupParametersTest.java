package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * pool_mode = session: a client's server connection logs in with the client's own startup
 * parameters, so RESET and RESET ALL return to the client's values, exactly as on a connection the
 * client opened itself; and a connection opened for one client's parameters never serves a client
 * with others.
 */
class SessionStartupParametersTest {

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres()
                    .withRelay(
                            relay ->
                                    relay.set("pool.pool_mode", "session")
                                            .set("pool.default_pool_size", 2));

    /** SETs then RESETs; what the client sees, one line per SHOW. */
    private static final String[] SCRIPT = {
        "set datestyle = 'German'",
        "set intervalstyle = 'iso_8601'",
        "reset datestyle",
        "show datestyle",
        "reset intervalstyle",
        "show intervalstyle",
        "set datestyle = 'SQL, DMY'",
        "set intervalstyle = 'sql_standard'",
        "reset all",
        "show datestyle",
        "show intervalstyle",
        "select pg_backend_pid()"
    };

    @Test
    void resetReturnsToEachClientsStartupValuesForConsecutiveClients() {
        // DateStyle as a startup parameter (libpq sends PGDATESTYLE as one), IntervalStyle
        // through options -c, then neither, then the first again: each as directly.
        Map<String, String> dateStyle = Map.of("PGDATESTYLE", "Postgres,MDY");
        Map<String, String> intervalStyle =
                Map.of("PGOPTIONS", "-c intervalstyle=postgres_verbose");
        List<String> first = psql(servers.relay().writePort(), dateStyle);
        assertEquals(
                List.of("Postgres, MDY", "postgres", "Postgres, MDY", "postgres"),
                first.subList(0, 4));
        assertEquals(first.subList(0, 4), psql(servers.primary().port(), dateStyle).subList(0, 4));

        List<String> second = psql(servers.relay().writePort(), intervalStyle);
        assertEquals(
                List.of("ISO, MDY", "postgres_verbose", "ISO, MDY", "postgres_verbose"),
                second.subList(0, 4));
        assertEquals(
                second.subList(0, 4), psql(servers.primary().port(), intervalStyle).subList(0, 4));
        assertNotEquals(first.get(4), second.get(4), "not the first client's server connection");

        List<String> plain = psql(servers.relay().writePort(), Map.of());
        assertEquals(List.of("ISO, MDY", "postgres", "ISO, MDY", "postgres"), plain.subList(0, 4));

        // The first parameters again: its own pool (DISCARD ALL resets to them).
        List<String> again = psql(servers.relay().writePort(), dateStyle);
        assertEquals(first.subList(0, 4), again.subList(0, 4));
    }

    @Test
    void pgjdbcOptionsSurviveResetAll() throws Exception {
        Map<String, String> props =
                Map.of("prepareThreshold", "0", "options", "-c intervalstyle=postgres_verbose");
        for (int i = 0; i < 2; i++) {
            try (Connection c =
                    servers.relay()
                            .connect(
                                    servers.relay().writePort(),
                                    PgServer.APP_DB,
                                    PgServer.APP_USER,
                                    PgServer.APP_PASSWORD,
                                    props)) {
                assertEquals("postgres_verbose", one(c, "show intervalstyle"));
                try (Statement st = c.createStatement()) {
                    st.execute("set intervalstyle = 'iso_8601'");
                    st.execute("reset all");
                }
                assertEquals("postgres_verbose", one(c, "show intervalstyle"));
                try (Statement st = c.createStatement()) {
                    st.execute("set intervalstyle = 'iso_8601'");
                    st.execute("reset intervalstyle");
                }
                assertEquals("postgres_verbose", one(c, "show intervalstyle"));
            }
            // And a client without it, in between, gets the server's default.
            try (Connection c = servers.relay().app()) {
                assertEquals("postgres", one(c, "show intervalstyle"));
                try (Statement st = c.createStatement()) {
                    st.execute("reset all");
                }
                assertEquals("postgres", one(c, "show intervalstyle"));
            }
        }
    }

    private static List<String> psql(int port, Map<String, String> env) {
        return RelayFixture.psqlLines(port, env, List.of(SCRIPT));
    }
}
