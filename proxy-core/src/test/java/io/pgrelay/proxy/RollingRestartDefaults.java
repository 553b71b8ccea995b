package io.pgrelay.proxy;

import io.pgrelay.testkit.Haproxy;
import io.pgrelay.testkit.PgServer;

/**
 * {@link RollingRestart} with HikariCP's defaults (maxLifetime 30 min, ...): prints what the
 * application sees. Not a test, so that CI does not spend two more minutes on it:
 *
 * <pre>
 * mvn -B -q -DskipTests install
 * mvn -B -q -pl proxy-core exec:java -Dexec.mainClass=io.pgrelay.proxy.RollingRestartDefaults \
 *     -Dexec.classpathScope=test -Dexec.cleanupDaemonThreads=false
 * </pre>
 */
public final class RollingRestartDefaults {

    private RollingRestartDefaults() {}

    public static void main(String[] args) throws Exception {
        if (!Haproxy.installed()) {
            System.err.println("HAProxy not found at " + Haproxy.binary());
            System.exit(2);
        }
        try (PgServer primary = PgServer.startPrimary()) {
            RollingRestart.Result result = RollingRestart.run(primary, pool -> {});
            System.out.println("RollingRestart, HikariCP defaults:\n" + result.describe());
        }
    }
}
