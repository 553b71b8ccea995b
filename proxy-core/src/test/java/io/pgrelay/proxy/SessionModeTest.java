package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.sql.Connection;
import java.sql.Statement;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

/**
 * pool_mode = session: a client keeps one server connection; session state is reset between
 * clients.
 */
class SessionModeTest {

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres()
                    .withRelay(
                            relay ->
                                    relay.set("pool.pool_mode", "session")
                                            .set("pool.default_pool_size", 2));

    @Test
    void listenNotify() throws Exception {
        try (Connection listener = servers.relay().app();
                Connection notifier = servers.relay().app()) {
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
        try (Connection c = servers.relay().app()) {
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
        try (Connection a = servers.relay().app();
                Connection b = servers.relay().app()) {
            for (Connection c : new Connection[] {a, b}) {
                assertEquals("4MB", one(c, "show work_mem"));
                assertEquals("0", one(c, "select count(*) from pg_prepared_statements"));
            }
        }
    }
}
