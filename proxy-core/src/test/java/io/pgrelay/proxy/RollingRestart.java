package io.pgrelay.proxy;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.pgrelay.testkit.Haproxy;
import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A rolling restart as an orchestrator does it, under an application's load: three pgrelay
 * instances in front of one PostgreSQL, HAProxy round-robin in front of them (standing in for the
 * Swarm VIP), an application pool (HikariCP) through HAProxy running {@link AppLoad}. The instances
 * are stopped gracefully ({@link PgRelay#shutdown}, what SIGTERM does) one by one, each started
 * again on the same ports and seen up by HAProxy before the next one goes.
 *
 * <p>Shared by {@link RollingRestartTest} (the pool settings the README recommends) and {@link
 * RollingRestartDefaults} (HikariCP's defaults).
 */
final class RollingRestart {

    /**
     * Three quarters of it (33.75 s, the part of the drain in which clients are only closed after a
     * second between transactions) exceed HikariCP's shortest maxLifetime, 30 s, with margin.
     */
    static final Duration SHUTDOWN_TIMEOUT = Duration.ofSeconds(45);

    private static final Duration WARM_UP = Duration.ofSeconds(3);
    private static final Duration UP_TIMEOUT = Duration.ofSeconds(15);

    /** What the application saw, and how long each graceful stop took. */
    record Result(
            long operations,
            int acknowledged,
            Set<Long> missing,
            List<AppLoad.Failure> failures,
            Map<String, Integer> failureCounts,
            Duration longestStall,
            String longestStallWhere,
            List<Duration> stops,
            List<String> timeline) {

        String describe() {
            StringBuilder out = new StringBuilder();
            out.append("timeline (s since the load started):\n");
            timeline.forEach(line -> out.append("  ").append(line).append('\n'));
            out.append("operations: ").append(operations).append('\n');
            out.append("application errors: ").append(failures.size()).append('\n');
            failureCounts.forEach(
                    (kind, n) ->
                            out.append("  ").append(n).append(" x ").append(kind).append('\n'));
            failures.stream().limit(20).forEach(f -> out.append("    ").append(f).append('\n'));
            out.append("acknowledged writes: ")
                    .append(acknowledged)
                    .append(", missing afterwards: ")
                    .append(missing.size())
                    .append('\n');
            out.append("longest stall: ")
                    .append(longestStall.toMillis())
                    .append(" ms (")
                    .append(longestStallWhere)
                    .append(")\n");
            out.append("graceful stops: ")
                    .append(stops.stream().map(d -> d.toMillis() / 1000.0 + " s").toList())
                    .append(" (shutdown_timeout ")
                    .append(SHUTDOWN_TIMEOUT.toSeconds())
                    .append(" s)\n");
            return out.toString();
        }
    }

    private RollingRestart() {}

    /**
     * Runs the scenario against {@code primary} (which gets table {@value AppLoad#TABLE}); {@code
     * poolSettings} configures the application's HikariCP pool beyond URL and credentials.
     */
    static Result run(PgServer primary, Consumer<HikariConfig> poolSettings) throws Exception {
        try (Connection c =
                        primary.connect(PgServer.APP_DB, PgServer.APP_USER, PgServer.APP_PASSWORD);
                Statement st = c.createStatement()) {
            st.execute(AppLoad.CREATE_TABLE);
        }
        List<RelaySlot> slots = new ArrayList<>();
        for (int i = 1; i <= 3; i++) {
            slots.add(new RelaySlot("relay" + i, primary, SHUTDOWN_TIMEOUT));
        }
        Haproxy haproxy = null;
        try {
            for (RelaySlot slot : slots) {
                slot.start();
            }
            haproxy = Haproxy.start(slots.stream().map(RelaySlot::server).toList());
            for (RelaySlot slot : slots) {
                haproxy.awaitStatus(slot.name(), "UP", UP_TIMEOUT);
            }
            return underLoad(primary, haproxy, slots, poolSettings);
        } finally {
            if (haproxy != null) {
                haproxy.close();
            }
            slots.forEach(RelaySlot::close);
        }
    }

    private static Result underLoad(
            PgServer primary,
            Haproxy haproxy,
            List<RelaySlot> slots,
            Consumer<HikariConfig> poolSettings)
            throws Exception {
        HikariConfig config = new HikariConfig();
        config.setPoolName("app");
        config.setJdbcUrl("jdbc:postgresql://127.0.0.1:" + haproxy.port() + "/" + PgServer.APP_DB);
        config.setUsername(PgServer.APP_USER);
        config.setPassword(PgServer.APP_PASSWORD);
        poolSettings.accept(config);
        List<String> timeline = new ArrayList<>();
        List<Duration> stops = new ArrayList<>();
        AppLoad load;
        try (HikariDataSource pool = new HikariDataSource(config)) {
            load = new AppLoad(pool, 2, 2, 2);
            load.start();
            Thread.sleep(WARM_UP.toMillis());
            for (RelaySlot slot : slots) {
                note(timeline, load, slot.name() + ": graceful stop begins");
                Duration took = slot.stopGracefully();
                stops.add(took);
                note(timeline, load, slot.name() + ": stopped after " + took.toMillis() + " ms");
                slot.start();
                note(timeline, load, slot.name() + ": started again, /ready 200");
                haproxy.awaitStatus(slot.name(), "UP", UP_TIMEOUT);
                note(timeline, load, slot.name() + ": UP in haproxy");
            }
            Thread.sleep(WARM_UP.toMillis());
            load.stop();
            note(timeline, load, "load stopped");
        }
        Set<Long> acknowledged = load.acknowledged();
        Set<Long> missing = new HashSet<>(acknowledged);
        missing.removeAll(idsIn(primary));
        return new Result(
                load.operations(),
                acknowledged.size(),
                missing,
                load.failures(),
                load.failureCounts(),
                load.longestStall(),
                load.longestStallWhere(),
                stops,
                timeline);
    }

    private static void note(List<String> timeline, AppLoad load, String what) {
        timeline.add("%7.1f %s".formatted(load.millisSinceStart() / 1000.0, what));
    }

    /** What the database has, read from PostgreSQL directly. */
    private static Set<Long> idsIn(PgServer primary) throws Exception {
        Set<Long> ids = new HashSet<>();
        try (Connection c =
                        primary.connect(PgServer.APP_DB, PgServer.APP_USER, PgServer.APP_PASSWORD);
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select id from " + AppLoad.TABLE)) {
            while (rs.next()) {
                ids.add(rs.getLong(1));
            }
        }
        return ids;
    }
}
