package io.pgrelay.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.zaxxer.hikari.HikariConfig;
import io.pgrelay.testkit.Haproxy;
import io.pgrelay.testkit.PgServer;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Issue 16: a rolling restart of three pgrelay instances behind a TCP round-robin costs an
 * application whose pool is set up as the README recommends no error and no acknowledged write (see
 * {@link RollingRestart}; {@link RollingRestartDefaults} shows what HikariCP's defaults get).
 */
class RollingRestartTest {

    /**
     * The README's HikariCP settings for pgrelay with runtime.shutdown_timeout = 45s: every
     * connection retires on its own before a draining pgrelay starts closing clients as their
     * transactions end.
     */
    static void recommended(HikariConfig pool) {
        // HikariCP's minimum (shorter values are replaced by its 30-minute default); it retires
        // each connection at a random point in the last quarter of this, so all connections to a
        // draining pgrelay are gone within 30 s, before three quarters of shutdown_timeout.
        pool.setMaxLifetime(30_000);
        // A fixed-size pool, as HikariCP advises. Its default keepaliveTime (2 min) and
        // idleTimeout (10 min) exceed maxLifetime, which HikariCP would warn about and ignore.
        pool.setMaximumPoolSize(10);
        pool.setMinimumIdle(10);
        pool.setKeepaliveTime(0);
        pool.setIdleTimeout(0);
        pool.setConnectionTimeout(10_000);
        // Left at its default: a connection idle for more than 500 ms is validated before it is
        // handed out, and one a draining pgrelay closed (after a second between transactions)
        // is replaced without the application noticing.
    }

    @Test
    void restartingEachInstanceInTurnCostsTheApplicationNothing() throws Exception {
        assumeTrue(
                Haproxy.installed(),
                "HAProxy not found at " + Haproxy.binary() + " (apt-get install haproxy)");
        try (PgServer primary = PgServer.startPrimary()) {
            RollingRestart.Result result =
                    RollingRestart.run(primary, RollingRestartTest::recommended);
            String report = result.describe();
            System.out.println("RollingRestartTest, recommended HikariCP settings:\n" + report);

            assertEquals(List.of(), result.failures(), report);
            assertEquals(Set.of(), result.missing(), report);
            assertEquals(3, result.stops().size(), report);
            assertTrue(result.acknowledged() > 0, report);
        }
    }
}
