package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.sql.Statement;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

/**
 * pool_mode = session: a client keeps one server connection; session state is reset between
 * clients.
 */
class SessionModeTest {

    static PgServer primary;
    static RelayFixture relay;

    @BeforeAll
    static void start() {
        primary = PgServer.startPrimary();
        relay =
                RelayFixture.builder(primary)
                        .set("pool.pool_mode", "session")
                        .set("pool.default_pool_size", 2)
                        .start();
    }

    @AfterAll
    static void stop() {
        if (relay != null) {
            relay.close();
        }
        if (primary != null) {
            primary.close();
        }
    }

    @Test
    void listenNotify() throws Exception {
        try (Connection listener = relay.app();
                Connection notifier = relay.app()) {
            try (Statement st = listener.createStatement()) {
                st.execute("listen jobs");
            }
            try (Statement st = notifier.createStatement()) {
                st.execute("notify jobs, 'job-42'");
            }
            PGNotification[] got = null;
            for (int i = 0; i < 50 && (got == null || got.length == 0); i++) {
                got = listener.unwrap(PGConnection.class).getNotifications(100);
            }
            assertNotNull(got);
            assertEquals(1, got.length);
            assertEquals("jobs", got[0].getName());
            assertEquals("job-42", got[0].getParameter());
        }
    }

    @Test
    void clientKeepsItsServerAndSessionStateIsResetAfterIt() throws Exception {
        String pid;
        try (Connection c = relay.app()) {
            pid = one(c, "select pg_backend_pid()");
            try (Statement st = c.createStatement()) {
                st.execute("set work_mem = '7MB'");
                st.execute("prepare p as select 1");
            }
            for (int i = 0; i < 5; i++) {
                assertEquals(pid, one(c, "select pg_backend_pid()"));
            }
            assertEquals("7MB", one(c, "show work_mem"));
        }
        // The next client may get the same server connection, after DISCARD ALL.
        try (Connection a = relay.app();
                Connection b = relay.app()) {
            for (Connection c : new Connection[] {a, b}) {
                assertEquals("4MB", one(c, "show work_mem"));
                assertEquals("0", one(c, "select count(*) from pg_prepared_statements"));
            }
        }
    }
}
