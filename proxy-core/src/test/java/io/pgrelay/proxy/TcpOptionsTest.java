package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.uring.IoUringChannelOption;
import io.pgrelay.config.TcpSettings;
import io.pgrelay.testkit.CapturedLogs;
import java.sql.Connection;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * PgBouncer's tcp_* settings reach the sockets: read back from the kernel through the channels of a
 * real client and a real server connection, on the transport the suite runs (epoll, or io_uring in
 * that pass) and on Java NIO.
 */
class TcpOptionsTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    @RegisterExtension final CapturedLogs logs = new CapturedLogs();

    private static final TcpSettings SET = new TcpSettings(true, 7, 3, 4, 4500, 0);

    private static RelayFixture.Builder relayWith(TcpSettings tcp) {
        return RelayFixture.builder(servers.primary())
                .set("tcp.tcp_keepalive", tcp.keepalive())
                .set("tcp.tcp_keepidle", tcp.keepIdleSeconds())
                .set("tcp.tcp_keepintvl", tcp.keepIntervalSeconds())
                .set("tcp.tcp_keepcnt", tcp.keepCount())
                .set("tcp.tcp_user_timeout", tcp.userTimeoutMillis())
                .set("tcp.server_tcp_user_timeout", tcp.serverUserTimeoutMillis());
    }

    @Test
    void clientAndServerSocketsGetTheSettings() throws Exception {
        try (RelayFixture relay = relayWith(SET).start();
                Connection c = relay.app()) {
            c.setAutoCommit(false);
            assertEquals("1", one(c, "select 1")); // holds its server connection
            Transport transport = relay.relay().transport();
            Map<ChannelOption<?>, Object> expected = TcpOptions.of(transport, SET);
            assertEquals(5, expected.size(), transport.name() + ": " + expected);
            assertOptions(expected, clientChannel(relay), "client socket");
            assertOptions(expected, serverChannel(relay), "server socket");
            if (transport.name().equals("io_uring")) {
                // Both read into the loop's buffer ring (an idle socket holds no buffer).
                assertEquals(
                        Map.of(IoUringChannelOption.IO_URING_BUFFER_GROUP_ID, (short) 0),
                        transport.channelOptions());
                assertOptions(transport.channelOptions(), clientChannel(relay), "client socket");
                assertOptions(transport.channelOptions(), serverChannel(relay), "server socket");
            }
            if (transport.name().equals("epoll")) {
                // Named by hand once, so a mapping mistake in TcpOptions cannot hide itself.
                Channel server = serverChannel(relay);
                assertEquals(7, server.config().getOption(EpollChannelOption.TCP_KEEPIDLE));
                assertEquals(3, server.config().getOption(EpollChannelOption.TCP_KEEPINTVL));
                assertEquals(4, server.config().getOption(EpollChannelOption.TCP_KEEPCNT));
                assertEquals(4500, server.config().getOption(EpollChannelOption.TCP_USER_TIMEOUT));
                assertTrue(server.config().getOption(ChannelOption.SO_KEEPALIVE));
            }
            c.rollback();
        }
    }

    @Test
    void keepaliveOffAndKernelDefaults() throws Exception {
        TcpSettings off = new TcpSettings(false, 0, 0, 0, 0, 0);
        try (RelayFixture relay = relayWith(off).start();
                Connection c = relay.app()) {
            c.setAutoCommit(false);
            one(c, "select 1");
            Map<ChannelOption<?>, Object> expected = TcpOptions.of(relay.relay().transport(), off);
            assertEquals(Map.of(ChannelOption.SO_KEEPALIVE, false), expected);
            assertOptions(expected, clientChannel(relay), "client socket");
            assertOptions(expected, serverChannel(relay), "server socket");
            if (relay.relay().transport().name().equals("epoll")) {
                // 0: the kernel's default stays (net.ipv4.tcp_user_timeout has none: 0).
                assertEquals(
                        0,
                        serverChannel(relay)
                                .config()
                                .getOption(EpollChannelOption.TCP_USER_TIMEOUT));
            }
            c.rollback();
        }
    }

    @Test
    void aChangeAppliesToConnectionsOpenedAfterIt() throws Exception {
        try (RelayFixture relay = relayWith(SET).start();
                Connection before = relay.app()) {
            one(before, "select 1");
            assertNull(relay.relay().set("tcp_keepidle", "9"));
            assertNull(relay.relay().set("tcp_user_timeout", "2500"));
            TcpSettings after = new TcpSettings(true, 9, 3, 4, 2500, 0);
            Transport transport = relay.relay().transport();
            // The console's SET names the setting without its section, and a bare number is
            // milliseconds for tcp_user_timeout, as in PgBouncer.
            assertEquals(after, relay.relay().config().tcp());
            List<Channel> old =
                    relay.relay().sessions().stream().map(ClientSession::channel).toList();
            try (Connection newer = relay.app()) {
                newer.setAutoCommit(false);
                one(newer, "select 1");
                Channel newest =
                        relay.relay().sessions().stream()
                                .map(ClientSession::channel)
                                .filter(ch -> !old.contains(ch))
                                .findFirst()
                                .orElseThrow();
                assertOptions(TcpOptions.of(transport, after), newest, "client after SET");
                // The server connection it got may be the one opened before: retire them, then
                // the next one is new.
                newer.rollback();
                relay.relay().pools().all().forEach(p -> p.pool().retire("test"));
                one(newer, "select 1");
                assertOptions(
                        TcpOptions.of(transport, after), serverChannel(relay), "server after SET");
                newer.rollback();
            }
        }
    }

    @Test
    void javaNioSetsKeepaliveAndSaysTheUserTimeoutIsIgnored() throws Exception {
        try (RelayFixture relay =
                        relayWith(SET)
                                .set("runtime.use_epoll", false)
                                .set("runtime.use_io_uring", false)
                                .start();
                Connection c = relay.app()) {
            c.setAutoCommit(false);
            one(c, "select 1");
            Transport transport = relay.relay().transport();
            assertEquals("nio", transport.name());
            assertFalse(TcpOptions.supportsUserTimeout(transport));
            Map<ChannelOption<?>, Object> expected = TcpOptions.of(transport, SET);
            assertEquals(4, expected.size(), expected.toString());
            assertOptions(expected, clientChannel(relay), "client socket");
            assertOptions(expected, serverChannel(relay), "server socket");
            assertEquals(
                    1,
                    logs.events().stream()
                            .filter(
                                    e ->
                                            e.getLevel() == Level.WARN
                                                    && e.getFormattedMessage()
                                                            .contains(
                                                                    "tcp.server_tcp_user_timeout (4500"
                                                                            + " ms) is ignored on"
                                                                            + " the nio transport"))
                            .count());
            c.rollback();
        }
    }

    static void assertOptions(Map<ChannelOption<?>, Object> expected, Channel ch, String what) {
        expected.forEach(
                (option, value) ->
                        assertEquals(value, ch.config().getOption(option), what + ": " + option));
    }

    static Channel clientChannel(RelayFixture relay) {
        List<ClientSession> sessions = List.copyOf(relay.relay().sessions());
        assertEquals(1, sessions.size(), "one client");
        return sessions.get(0).channel();
    }

    /** The one server connection held by a client. */
    static Channel serverChannel(RelayFixture relay) {
        List<Channel> held =
                relay.relay().pools().all().stream()
                        .flatMap(p -> p.connections.stream())
                        .filter(conn -> conn.channel() != null && conn.channel().isActive())
                        .filter(conn -> conn.client() != null)
                        .map(ServerConnection::channel)
                        .toList();
        assertEquals(1, held.size(), "one server connection held by a client");
        return held.get(0);
    }
}
