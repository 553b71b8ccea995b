package io.pgrelay.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import io.pgrelay.routing.Backend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PGRELAY_* variables, given as a Map: the process's own environment is never touched. */
class EnvOverridesTest {

    @TempDir Path dir;

    private static ProxyConfig load(Map<String, String> env) {
        return ProxyConfig.load(null, env);
    }

    @Test
    void everySettingHasItsOwnName() {
        // names() throws on a collision; this also pins the naming rule on a few settings.
        SortedMap<String, String> names = EnvOverrides.names(ProxyConfig.defaults());
        assertEquals(ProxyConfig.defaults().getConfig("pgrelay").entrySet().size(), names.size());
        assertEquals("pool.default_pool_size", names.get("PGRELAY_POOL_DEFAULT_POOL_SIZE"));
        assertEquals(
                "routing.patroni.etcd_endpoints",
                names.get("PGRELAY_ROUTING_PATRONI_ETCD_ENDPOINTS"));
        assertEquals("tls.client_tls_sslmode", names.get("PGRELAY_TLS_CLIENT_TLS_SSLMODE"));
        for (String launcher : EnvOverrides.LAUNCHER_VARIABLES) {
            assertFalse(names.containsKey(launcher), launcher + " is bin/pgrelay's");
        }
    }

    @Test
    void namesThatCollideAreRefused() {
        var twoForOne = ConfigFactory.parseString("pgrelay { a.b_c = 1, a_b.c = 2 }");
        IllegalStateException e =
                assertThrows(IllegalStateException.class, () -> EnvOverrides.names(twoForOne));
        assertTrue(e.getMessage().contains("PGRELAY_A_B_C"), e.getMessage());
    }

    @Test
    void scalarsAreConvertedAsInTheFile() {
        ProxyConfig c =
                load(
                        Map.of(
                                "PGRELAY_POOL_DEFAULT_POOL_SIZE", "50",
                                "PGRELAY_RUNTIME_SHUTDOWN_TIMEOUT", "60s",
                                "PGRELAY_POOL_CLIENT_IDLE_TIMEOUT", "4",
                                "PGRELAY_ADMIN_METRICS_HISTOGRAMS", "false",
                                "PGRELAY_PROTOCOL_MAX_MESSAGE_SIZE", "1MiB",
                                "PGRELAY_LISTEN_HOST", "\"0.0.0.0\"",
                                "PGRELAY_POOL_POOL_MODE", "session"));
        assertEquals(50, c.poolSettings().poolSize());
        assertEquals(Duration.ofSeconds(60), c.shutdownTimeout());
        assertEquals(Duration.ofSeconds(4), c.clientIdleTimeout(), "a bare number is seconds");
        assertFalse(c.metricsHistograms());
        assertEquals(1024 * 1024, c.maxMessageSize());
        assertEquals("0.0.0.0", c.listenHost());
        assertEquals(ProxyConfig.PoolMode.SESSION, c.poolMode());
        assertEquals("50", c.settings().get("pool.default_pool_size"), "SHOW CONFIG shows it");
    }

    @Test
    void valuesAreVerbatimNotHocon() {
        // In HOCON '//' would start a comment and '${' a substitution.
        String query = "SELECT usename, passwd FROM pgbouncer.get_auth($1) -- ${x} //";
        ProxyConfig c =
                load(
                        Map.of(
                                "PGRELAY_AUTH_AUTH_USER", "pgbouncer",
                                "PGRELAY_AUTH_AUTH_QUERY", query,
                                "PGRELAY_BACKENDS_PRIMARY", "db.example:6432"));
        assertEquals(query, c.authQuery().query());
        assertEquals(Backend.parse("db.example:6432"), c.primary());
    }

    @Test
    void listsTakeCommasOrHocon() {
        ProxyConfig commas =
                load(
                        Map.of(
                                "PGRELAY_ROUTING_PATRONI_ETCD_ENDPOINTS",
                                "http://etcd1:2379, http://etcd2:2379,http://etcd3:2379",
                                "PGRELAY_BACKENDS_REPLICAS",
                                ""));
        assertEquals(
                List.of("http://etcd1:2379", "http://etcd2:2379", "http://etcd3:2379"),
                commas.etcdEndpoints());
        assertEquals(List.of(), commas.replicas());

        ProxyConfig hocon =
                load(
                        Map.of(
                                "PGRELAY_ADMIN_ADMIN_USERS", "[\"admin\", \"ops,team\"]",
                                "PGRELAY_BACKENDS_REPLICAS", "[\"r1:5432\",\"r2:5432\"]"));
        assertEquals(java.util.Set.of("admin", "ops,team"), hocon.adminUsers());
        assertEquals(2, hocon.replicas().size());
    }

    @Test
    void environmentBeatsTheFileAndSystemPropertiesBeatTheEnvironment() throws IOException {
        Path file = dir.resolve("pgrelay.conf");
        Files.writeString(
                file, "pgrelay.pool.default_pool_size = 7\npgrelay.pool.max_client_conn = 300\n");
        Map<String, String> env =
                Map.of(
                        "PGRELAY_POOL_DEFAULT_POOL_SIZE", "8",
                        "PGRELAY_POOL_MIN_POOL_SIZE", "2");
        String property = "pgrelay.pool.min_pool_size";
        System.setProperty(property, "3");
        ConfigFactory.invalidateCaches();
        try {
            ProxyConfig c = ProxyConfig.load(file.toFile(), env);
            assertEquals(8, c.poolSettings().poolSize(), "env over file");
            assertEquals(300, c.maxClientConn(), "file where env says nothing");
            assertEquals(3, c.poolSettings().minPoolSize(), "system property over env");
        } finally {
            System.clearProperty(property);
            ConfigFactory.invalidateCaches();
        }
    }

    @Test
    void unknownVariablesAreReportedNotFatal() {
        Map<String, String> env =
                Map.of(
                        "PGRELAY_POOL_DEFAULT_POOLSIZE", "50",
                        "PGRELAY_JAR", "/opt/pgrelay/pgrelay.jar",
                        "PGRELAY_JVM_OPTIONS", "/opt/pgrelay/conf/jvm.options",
                        "PATH", "/usr/bin");
        EnvOverrides o = EnvOverrides.from(env, ProxyConfig.defaults());
        assertEquals(List.of("PGRELAY_POOL_DEFAULT_POOLSIZE"), o.unknown());
        assertTrue(o.applied().isEmpty());
        assertEquals(20, load(env).poolSettings().poolSize());
    }

    @Test
    void badValuesNameTheVariable() {
        assertNamed("PGRELAY_POOL_DEFAULT_POOL_SIZE", "many"); // Typesafe's type check
        assertNamed("PGRELAY_POOL_DEFAULT_POOL_SIZE", "0"); // pgrelay's range check
        assertNamed("PGRELAY_RUNTIME_SHUTDOWN_TIMEOUT", "soon");
        assertNamed("PGRELAY_LISTEN_WRITE_PORT", "70000");
        assertNamed("PGRELAY_POOL_POOL_MODE", "transactional");
        assertNamed("PGRELAY_ROUTING_PATRONI_ETCD_ENDPOINTS", "[\"http://etcd1:2379\"");
        assertNamed("PGRELAY_LISTEN_HOST", "\"unterminated");
    }

    @Test
    void aSystemPropertyOverridingABadVariableIsNotBlamedOnIt() {
        // The error is the property's; the variable played no part in it.
        String property = "pgrelay.pool.default_pool_size";
        System.setProperty(property, "0");
        ConfigFactory.invalidateCaches();
        try {
            ConfigException e =
                    assertThrows(
                            ConfigException.class,
                            () -> load(Map.of("PGRELAY_POOL_DEFAULT_POOL_SIZE", "0")));
            assertFalse(e.getMessage().contains("PGRELAY_"), e.getMessage());
        } finally {
            System.clearProperty(property);
            ConfigFactory.invalidateCaches();
        }
    }

    private static void assertNamed(String name, String value) {
        ConfigException e = assertThrows(ConfigException.class, () -> load(Map.of(name, value)));
        assertTrue(e.getMessage().contains(name), name + "=" + value + ": " + e.getMessage());
    }
}
