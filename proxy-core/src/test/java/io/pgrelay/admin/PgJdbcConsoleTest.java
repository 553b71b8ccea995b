package io.pgrelay.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.StartupMessage;
import java.math.BigDecimal;
import java.net.InetSocketAddress;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The console as pgjdbc sees it: a bare Netty server that does the login pgrelay does (trust) and
 * hands every later frame to an AdminSession, as the lead's client session will.
 */
class PgJdbcConsoleTest {

    private static EventLoopGroup group;
    private static Channel server;
    private static final ConsoleHarness.FakeView VIEW = new ConsoleHarness.FakeView();
    private static final ConsoleHarness.FakeControl CONTROL = new ConsoleHarness.FakeControl();

    @BeforeAll
    static void start() throws InterruptedException {
        group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        server =
                new ServerBootstrap()
                        .group(group)
                        .channel(NioServerSocketChannel.class)
                        .childHandler(
                                new ChannelInitializer<SocketChannel>() {
                                    @Override
                                    protected void initChannel(SocketChannel ch) {
                                        FrameDecoder decoder = FrameDecoder.frontend(1 << 20);
                                        ch.pipeline().addLast(decoder, new ConsoleHandler(decoder));
                                    }
                                })
                        .bind("127.0.0.1", 0)
                        .sync()
                        .channel();
    }

    @AfterAll
    static void stop() throws InterruptedException {
        server.close().sync();
        group.shutdownGracefully().sync();
    }

    /** Startup and trust login as pgrelay does them, then the console. */
    private static final class ConsoleHandler extends SimpleChannelInboundHandler<ByteBuf> {

        private final FrameDecoder decoder;
        private AdminSession session;

        ConsoleHandler(FrameDecoder decoder) {
            this.decoder = decoder;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, ByteBuf msg) {
            if (session != null) {
                session.onFrame(
                        msg.retain()); // SimpleChannelInboundHandler releases its own reference
                return;
            }
            int code = StartupMessage.code(msg);
            if (code == StartupMessage.SSL_REQUEST_CODE) {
                ctx.writeAndFlush(ctx.alloc().buffer(1).writeByte('N'));
                return;
            }
            String user = StartupMessage.parameters(msg).get("user");
            String serverVersion =
                    StartupMessage.parameters(msg).getOrDefault("options", "").contains("legacy")
                            ? "1.25.0/bouncer"
                            : "16.0";
            decoder.typedPhase();
            ctx.write(Messages.authenticationOk());
            ctx.write(Messages.parameterStatus(ctx.alloc(), "server_version", serverVersion));
            ctx.write(Messages.parameterStatus(ctx.alloc(), "client_encoding", "UTF8"));
            ctx.write(Messages.parameterStatus(ctx.alloc(), "DateStyle", "ISO"));
            ctx.write(Messages.parameterStatus(ctx.alloc(), "integer_datetimes", "on"));
            ctx.write(Messages.parameterStatus(ctx.alloc(), "standard_conforming_strings", "on"));
            ctx.write(Messages.backendKeyData(ctx.alloc(), 1, 2));
            ctx.writeAndFlush(Messages.readyForQueryIdle());
            session =
                    new AdminSession(
                            VIEW,
                            CONTROL,
                            user.equals("admin"),
                            ctx.alloc(),
                            ctx.channel().eventLoop(),
                            new AdminSession.Output() {
                                @Override
                                public void write(ByteBuf messages) {
                                    ctx.writeAndFlush(messages);
                                }

                                @Override
                                public void close() {
                                    ctx.close();
                                }
                            });
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (session != null) {
                session.close();
            }
        }
    }

    private static Connection connect(String user, String extra) throws SQLException {
        int port = ((InetSocketAddress) server.localAddress()).getPort();
        return DriverManager.getConnection(
                "jdbc:postgresql://127.0.0.1:"
                        + port
                        + "/pgbouncer?user="
                        + user
                        + "&sslmode=disable&connectTimeout=5&socketTimeout=10"
                        + extra);
    }

    @Test
    void executeQueryShowPools() throws SQLException {
        try (Connection c = connect("admin", "");
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("SHOW POOLS")) {
            assertEquals(Types.VARCHAR, rs.getMetaData().getColumnType(1));
            assertEquals("int4", rs.getMetaData().getColumnTypeName(3));
            assertTrue(rs.next());
            assertEquals("app", rs.getString("database"));
            assertEquals(3, rs.getInt("cl_active"));
            assertEquals(2, rs.getInt("maxwait"));
            assertEquals("primary", rs.getString("role"));
            assertFalse(rs.next());
        }
    }

    @Test
    void preparedStatementSurvivesTheSwitchToNamedAndBinary() throws SQLException {
        try (Connection c = connect("admin", "&prepareThreshold=2");
                PreparedStatement ps = c.prepareStatement("SHOW STATS")) {
            for (int i = 0; i < 6; i++) {
                try (ResultSet rs = ps.executeQuery()) {
                    assertTrue(rs.next());
                    assertEquals("app", rs.getString("database"));
                    assertEquals(30, rs.getLong("total_query_count"));
                    assertEquals(30, rs.getLong("total_requests"));
                    assertEquals(
                            new BigDecimal("123456780000"),
                            rs.getBigDecimal("avg_client_login_count"));
                    assertTrue(rs.next());
                    assertFalse(rs.next());
                }
            }
        }
        try (Connection c = connect("admin", "&prepareThreshold=1");
                PreparedStatement ps = c.prepareStatement("SHOW POOLS")) {
            for (int i = 0; i < 3; i++) {
                try (ResultSet rs = ps.executeQuery()) {
                    assertTrue(rs.next());
                    assertEquals(3, rs.getInt("cl_active"));
                    assertEquals(500000, rs.getInt("maxwait_us"));
                }
            }
        }
    }

    @Test
    void errorsKeepTheConnectionUsable() throws SQLException {
        try (Connection c = connect("admin", "");
                Statement st = c.createStatement()) {
            SQLException e =
                    assertThrows(SQLException.class, () -> st.executeQuery("SHOW NOTHING"));
            assertEquals("42601", e.getSQLState());
            assertTrue(c.isValid(2));
            try (ResultSet rs = st.executeQuery("SHOW VERSION")) {
                assertTrue(rs.next());
                assertEquals("PgBouncer 1.25.0 (pgrelay 0.1.0)", rs.getString(1));
            }
        }
    }

    @Test
    void controlCommandsAndStatsUsers() throws SQLException {
        CompletableFuture<String> paused = new CompletableFuture<>();
        CONTROL.answers.put("PAUSE", paused);
        try (Connection c = connect("admin", "");
                Statement st = c.createStatement()) {
            CompletableFuture.runAsync(
                    () -> {
                        try {
                            Thread.sleep(100);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                        paused.complete(null);
                    });
            assertFalse(st.execute("PAUSE app"));
            assertFalse(st.execute("RESUME app"));
        }
        try (Connection c = connect("stats", "");
                Statement st = c.createStatement()) {
            SQLException e = assertThrows(SQLException.class, () -> st.execute("KILL app"));
            assertEquals("42501", e.getSQLState());
            try (ResultSet rs = st.executeQuery("SHOW LISTS")) {
                assertTrue(rs.next());
            }
        }
    }

    @Test
    void simpleQueryModeAndPgBouncerServerVersion() throws SQLException {
        try (Connection c = connect("admin", "&preferQueryMode=simple&options=legacy");
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("show databases;")) {
            assertTrue(rs.next());
            assertEquals(5, rs.getInt("reserve_pool"));
        }
        try (Connection c = connect("admin", "&options=legacy");
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("SHOW CONFIG")) {
            assertTrue(rs.next());
            assertEquals("max_client_conn", rs.getString("key"));
        }
    }
}
