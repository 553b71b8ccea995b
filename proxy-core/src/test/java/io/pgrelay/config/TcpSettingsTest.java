package io.pgrelay.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.Test;

class TcpSettingsTest {

    private static TcpSettings load(String hocon) {
        return ProxyConfig.from(
                        ConfigFactory.parseString(hocon)
                                .withFallback(ProxyConfig.defaults())
                                .resolve()
                                .getConfig("pgrelay"))
                .tcp();
    }

    @Test
    void defaultsDropASilentPeerWithinAboutAMinute() {
        TcpSettings t = load("");
        assertEquals(new TcpSettings(true, 30, 10, 3, 0, 60_000), t);
        assertTrue(t.keepIdleSeconds() + t.keepIntervalSeconds() * t.keepCount() <= 60);
        // Server sockets get a user timeout; client sockets keep the kernel's (PgBouncer's 0), so
        // a client reading a large result slowly is not dropped.
        assertEquals(60_000, t.forServers().userTimeoutMillis());
        assertEquals(0, t.userTimeoutMillis());
        assertEquals(
                4500,
                load("pgrelay.tcp { tcp_user_timeout = 4500, server_tcp_user_timeout = 0 }")
                        .forServers()
                        .userTimeoutMillis());
    }

    @Test
    void bareNumbersMeanWhatTheyMeanInPgBouncer() {
        // tcp_keepidle and tcp_keepintvl in seconds, tcp_user_timeout in milliseconds.
        TcpSettings t =
                load(
                        "pgrelay.tcp { tcp_keepalive = false, tcp_keepidle = 7, tcp_keepintvl ="
                                + " \"2\", tcp_keepcnt = 0, tcp_user_timeout = 4500 }");
        assertEquals(new TcpSettings(false, 7, 2, 0, 4500, 60_000), t);
        assertEquals(
                new TcpSettings(true, 60, 1, 3, 30_000, 60_000),
                load(
                        "pgrelay.tcp { tcp_keepidle = 1m, tcp_keepintvl = 1000ms,"
                                + " tcp_user_timeout = 30s }"));
        assertEquals(0, load("pgrelay.tcp.tcp_user_timeout = 0").userTimeoutMillis());
        assertEquals(0, load("pgrelay.tcp.tcp_keepidle = 0").keepIdleSeconds());
    }

    @Test
    void badValuesNameTheSetting() {
        String[][] cases = {
            {"pgrelay.tcp.tcp_keepidle = 1500ms", "tcp.tcp_keepidle"},
            {"pgrelay.tcp.tcp_keepidle = -1", "tcp.tcp_keepidle"},
            {"pgrelay.tcp.tcp_keepintvl = 40000", "tcp.tcp_keepintvl"},
            {"pgrelay.tcp.tcp_keepcnt = 128", "tcp.tcp_keepcnt"},
            {"pgrelay.tcp.tcp_keepcnt = -1", "tcp.tcp_keepcnt"},
            {"pgrelay.tcp.tcp_user_timeout = -5", "tcp.tcp_user_timeout"},
            {"pgrelay.tcp.tcp_user_timeout = 30d", "tcp.tcp_user_timeout"},
            {"pgrelay.tcp.server_tcp_user_timeout = -1", "tcp.server_tcp_user_timeout"},
        };
        for (String[] c : cases) {
            ConfigException e = assertThrows(ConfigException.class, () -> load(c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]), c[0] + ": " + e.getMessage());
        }
    }
}
