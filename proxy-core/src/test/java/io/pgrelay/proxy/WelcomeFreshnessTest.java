package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.testkit.PgServer;
import io.pgrelay.testkit.Proc;
import java.sql.Connection;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.postgresql.PGConnection;

/**
 * A database's or role's settings changed on the server ({@code ALTER DATABASE/ROLE ... SET}, the
 * database dropped and created again) reach new clients through pgrelay as they reach direct ones:
 * in their greeting (ParameterStatus) and in what SHOW says; clients connected before keep what
 * they had. In both pool modes, with psql, pgjdbc and a raw client.
 */
class WelcomeFreshnessTest {

    /** PostgreSQL and a transaction-mode relay; the session-mode relay is this class's own. */
    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres().withRelay(relay -> relay.set("pool.default_pool_size", 2));

    static PgServer primary;
    static RelayFixture transaction;
    static RelayFixture session;

    @BeforeAll
    static void start() {
        primary = servers.primary();
        transaction = servers.relay();
        session =
                RelayFixture.builder(primary)
                        .set("pool.pool_mode", "session")
                        .set("pool.default_pool_size", 2)
                        .start();
    }

    @AfterAll
    static void stop() {
        if (session != null) {
            session.close();
        }
    }

    @Test
    void transactionMode() throws Exception {
        settingsChangeReachesNewClients(transaction, "welcome_tx");
    }

    @Test
    void sessionMode() throws Exception {
        settingsChangeReachesNewClients(session, "welcome_session");
    }

    /**
     * Clients connecting one after another share one login's welcome while a check (one query on a
     * pooled connection) says nothing it depends on changed; after ALTER DATABASE the next client
     * costs one fresh login. With welcome_max_age, not even the check runs.
     */
    @Test
    void clientsShareALoginUntilTheSettingsChange() throws Exception {
        primary.psql(PgServer.POSTGRES_DB, "create database welcome_share owner app");
        // At most the pool's two connections: one for the welcome, one more when a client's
        // check found the first still held by the client before it (released asynchronously).
        long before = logins(transaction, "welcome_share", 5);
        assertTrue(before >= 1 && before <= 2, before + " logins for five clients");
        primary.psql(
                PgServer.POSTGRES_DB, "alter database welcome_share set timezone = 'Asia/Tokyo'");
        long after = logins(transaction, "welcome_share", 3);
        assertTrue(after >= 1 && after <= 2, after + " logins for three clients after the change");
        try (RawClient c = raw(transaction, "welcome_share")) {
            assertEquals("Asia/Tokyo", c.greeting.get("TimeZone"));
        }

        primary.psql(PgServer.POSTGRES_DB, "create database welcome_age owner app");
        try (RelayFixture shared =
                RelayFixture.builder(primary)
                        .set("pool.default_pool_size", 1)
                        .set("pool.welcome_max_age", "1h")
                        .start()) {
            assertEquals(1, logins(shared, "welcome_age", 3));
            primary.psql(
                    PgServer.POSTGRES_DB, "alter database welcome_age set timezone = 'Asia/Tokyo'");
            // The price of the setting: within its age, a change is not seen by new clients.
            assertEquals(0, logins(shared, "welcome_age", 2));
        }
    }

    /** Server logins the relay made while {@code clients} connected one after another. */
    private static long logins(RelayFixture relay, String db, int clients) throws Exception {
        long before = connects(relay, db);
        for (int i = 0; i < clients; i++) {
            try (RawClient c = raw(relay, db)) {
                assertEquals("1", c.one("select 1"));
            }
        }
        return connects(relay, db) - before;
    }

    private static long connects(RelayFixture relay, String db) {
        return relay.relay().pools().all().stream()
                .filter(p -> p.key().database().equals(db))
                .mapToLong(p -> p.pool().stats().connectsStarted())
                .sum();
    }

    private void settingsChangeReachesNewClients(RelayFixture relay, String db) throws Exception {
        primary.psql(PgServer.POSTGRES_DB, "create database " + db + " owner app");
        String defaultZone = primary.psql(db, "show timezone");
        // Clients through pgrelay before the change; their server connections stay pooled.
        try (RawClient before = raw(relay, db);
                Connection jdbcBefore = jdbc(relay, db)) {
            assertEquals(defaultZone, before.greeting.get("TimeZone"));
            assertEquals(defaultZone, before.one("show timezone"));
            assertEquals("postgres", one(jdbcBefore, "show intervalstyle"));

            primary.psql(
                    PgServer.POSTGRES_DB,
                    "alter database "
                            + db
                            + " set timezone = 'Asia/Tokyo';"
                            + "alter database "
                            + db
                            + " set intervalstyle = 'iso_8601'");

            try (RawClient after = raw(relay, db)) {
                assertEquals("Asia/Tokyo", after.greeting.get("TimeZone"));
                assertEquals("iso_8601", after.greeting.get("IntervalStyle"));
                assertEquals("Asia/Tokyo", after.one("show timezone"));
                assertEquals("iso_8601", after.one("show intervalstyle"));
            }
            assertEquals("Asia/Tokyo", psql(relay, db, "show timezone"));
            try (Connection jdbcAfter = jdbc(relay, db)) {
                assertEquals("iso_8601", one(jdbcAfter, "show intervalstyle"));
                assertEquals(
                        "iso_8601",
                        jdbcAfter.unwrap(PGConnection.class).getParameterStatus("IntervalStyle"));
            }
            // Those connected before keep what they had, as direct clients do.
            assertEquals(defaultZone, before.one("show timezone"));
            assertEquals("postgres", one(jdbcBefore, "show intervalstyle"));

            // A role's setting in the database wins over the database's.
            primary.psql(
                    PgServer.POSTGRES_DB,
                    "alter role app in database " + db + " set timezone = 'America/New_York'");
            try (RawClient after = raw(relay, db)) {
                assertEquals("America/New_York", after.greeting.get("TimeZone"));
                assertEquals("America/New_York", after.one("show timezone"));
                assertEquals("iso_8601", after.one("show intervalstyle"));
            }
            assertEquals("America/New_York", psql(relay, db, "show timezone"));
        }

        // Dropped (pgrelay's pooled connections with it) and created again with other settings.
        primary.psql(
                PgServer.POSTGRES_DB,
                "drop database "
                        + db
                        + " with (force);"
                        + "create database "
                        + db
                        + " owner app;"
                        + "alter database "
                        + db
                        + " set timezone = 'Europe/Paris';"
                        + "alter database "
                        + db
                        + " set datestyle = 'SQL, DMY'");
        try (RawClient recreated = raw(relay, db)) {
            assertEquals("Europe/Paris", recreated.greeting.get("TimeZone"));
            assertEquals("SQL, DMY", recreated.greeting.get("DateStyle"));
            assertEquals("postgres", recreated.greeting.get("IntervalStyle"));
            assertEquals("Europe/Paris", recreated.one("show timezone"));
            assertEquals("SQL, DMY", recreated.one("show datestyle"));
            assertEquals("postgres", recreated.one("show intervalstyle"));
        }
        assertEquals("Europe/Paris", psql(relay, db, "show timezone"));
    }

    private static RawClient raw(RelayFixture relay, String db) throws Exception {
        return new RawClient(
                relay.writePort(), PgServer.APP_USER, PgServer.APP_PASSWORD, db, Map.of());
    }

    private static Connection jdbc(RelayFixture relay, String db) throws Exception {
        return relay.connect(
                relay.writePort(),
                db,
                PgServer.APP_USER,
                PgServer.APP_PASSWORD,
                Map.of("prepareThreshold", "0"));
    }

    /** psql through pgrelay: libpq sends no TimeZone of its own, so the server's default shows. */
    private static String psql(RelayFixture relay, String db, String sql) {
        return Proc.of(
                        "psql",
                        "-X",
                        "-A",
                        "-t",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        String.valueOf(relay.writePort()),
                        "-U",
                        PgServer.APP_USER,
                        "-d",
                        db,
                        "-c",
                        sql)
                .cleanPgEnv()
                .env("PGPASSWORD", PgServer.APP_PASSWORD)
                .check()
                .stdoutTrimmed();
    }
}
