package io.pgrelay.proxy;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.testkit.PgServer;
import io.pgrelay.testkit.Proc;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/** Starts a real pgrelay on free loopback ports in front of real PostgreSQL servers. */
final class RelayFixture implements AutoCloseable {

    private final PgRelay relay;
    private final Path dir;
    private final String host;

    private RelayFixture(PgRelay relay, Path dir, String host) {
        this.relay = relay;
        this.dir = dir;
        this.host = host;
    }

    static Builder builder(PgServer primary) {
        return new Builder(primary);
    }

    /** A relay following a Patroni cluster through its etcd. */
    static Builder patroni(io.pgrelay.testkit.PatroniCluster cluster) {
        return new Builder()
                .set("routing.source", "patroni")
                .set("routing.patroni.etcd_endpoints", cluster.etcdEndpoints())
                .set("routing.patroni.namespace", cluster.namespace())
                .set("routing.patroni.scope", cluster.scope());
    }

    static final class Builder {
        private final Map<String, Object> settings = new HashMap<>();
        private String userlist =
                "\"app\" \"app-secret\"\n\"postgres\" \"postgres\"\n\"md5user\" \"md5-secret\"\n";

        Builder(PgServer primary) {
            this();
            settings.put("backends.primary", primary.hostPort());
        }

        Builder() {
            settings.put("listen.host", "127.0.0.1");
            settings.put("listen.write_port", 0);
            settings.put("listen.read_port", 0);
            settings.put("pool.max_client_conn", 2000);
            settings.put("runtime.worker_threads", 2);
            settings.put("admin.http_port", 0);
        }

        Builder replicas(PgServer... replicas) {
            settings.put(
                    "backends.replicas",
                    java.util.Arrays.stream(replicas).map(PgServer::hostPort).toList());
            return this;
        }

        Builder set(String path, Object value) {
            settings.put(path, value);
            return this;
        }

        Builder userlist(String text) {
            userlist = text;
            return this;
        }

        RelayFixture start() {
            try {
                Path dir = Files.createTempDirectory("pgrelay-test-");
                Path users = dir.resolve("userlist.txt");
                Files.writeString(users, userlist);
                settings.put("auth.auth_file", users.toString());
                Map<String, Object> prefixed = new HashMap<>();
                settings.forEach((k, v) -> prefixed.put("pgrelay." + k, v));
                // -Dpgrelay.runtime.* (e.g. use_io_uring=false) runs the whole suite on another
                // transport.
                Config config =
                        ConfigFactory.parseMap(prefixed)
                                .withFallback(
                                        ConfigFactory.systemProperties()
                                                .withOnlyPath("pgrelay.runtime"))
                                .withFallback(ConfigFactory.parseResources("pgrelay.conf"))
                                .resolve();
                PgRelay relay = new PgRelay(ProxyConfig.from(config.getConfig("pgrelay"))).start();
                return new RelayFixture(relay, dir, String.valueOf(settings.get("listen.host")));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
    }

    PgRelay relay() {
        return relay;
    }

    int writePort() {
        return relay.writePort();
    }

    int readPort() {
        return relay.readPort();
    }

    /** listen.host: where the clients of {@link #connect} go (127.0.0.1 unless set). */
    String host() {
        return host;
    }

    String url(int port, String db, String extra) {
        return "jdbc:postgresql://"
                + host
                + ":"
                + port
                + "/"
                + db
                + (extra.isEmpty() ? "" : "?" + extra);
    }

    /** pgjdbc through the write port; prepareThreshold=0 unless told otherwise. */
    Connection connect(String user, String password) throws SQLException {
        return connect(
                writePort(), PgServer.APP_DB, user, password, Map.of("prepareThreshold", "0"));
    }

    /** The admin console as {@code postgres} (who must be in admin.admin_users), over pgjdbc. */
    Connection console() throws SQLException {
        return connect(
                writePort(),
                "pgbouncer",
                "postgres",
                "postgres",
                Map.of("preferQueryMode", "extended"));
    }

    Connection app() throws SQLException {
        return connect(PgServer.APP_USER, PgServer.APP_PASSWORD);
    }

    Connection appRead() throws SQLException {
        return connect(
                readPort(),
                PgServer.APP_DB,
                PgServer.APP_USER,
                PgServer.APP_PASSWORD,
                Map.of("prepareThreshold", "0"));
    }

    Connection connect(int port, String db, String user, String password, Map<String, String> props)
            throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", password);
        p.setProperty("connectTimeout", "10");
        p.setProperty("socketTimeout", "60");
        p.putAll(props);
        return DriverManager.getConnection(url(port, db, ""), p);
    }

    @Override
    public void close() {
        relay.close();
        try (var files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.deleteIfExists(f);
            }
            Files.deleteIfExists(dir);
        } catch (IOException ignored) {
            // temp files only
        }
    }

    static List<String> column(Connection c, String sql) throws SQLException {
        try (var st = c.createStatement();
                var rs = st.executeQuery(sql)) {
            List<String> out = new ArrayList<>();
            while (rs.next()) {
                out.add(rs.getString(1));
            }
            return out;
        }
    }

    static String one(Connection c, String sql) throws SQLException {
        return column(c, sql).get(0);
    }

    /**
     * psql as the app user against {@code port} on loopback (clean PG* environment plus {@code
     * env}), one {@code -c} per statement: the non-blank lines it printed.
     */
    static List<String> psqlLines(int port, Map<String, String> env, List<String> statements) {
        List<String> cmd =
                new ArrayList<>(
                        List.of(
                                "psql",
                                "-X",
                                "-q",
                                "-A",
                                "-t",
                                "-v",
                                "ON_ERROR_STOP=1",
                                "-h",
                                "127.0.0.1",
                                "-p",
                                String.valueOf(port),
                                "-U",
                                PgServer.APP_USER,
                                "-d",
                                PgServer.APP_DB));
        for (String sql : statements) {
            cmd.add("-c");
            cmd.add(sql);
        }
        Proc proc = Proc.of(cmd).cleanPgEnv().env("PGPASSWORD", PgServer.APP_PASSWORD);
        for (Map.Entry<String, String> e : env.entrySet()) {
            proc = proc.env(e.getKey(), e.getValue());
        }
        return proc.check().stdoutTrimmed().lines().filter(l -> !l.isBlank()).toList();
    }
}
