package io.pgrelay.proxy;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.SocketChannel;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.routing.Role;
import java.net.InetSocketAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The two client ports: the write port (clients get the primary) and the read port (a replica, or
 * the primary as fallback). Each accepted connection gets a frame decoder and a {@link
 * ClientSession}.
 */
final class ClientListeners {

    private static final Logger log = LoggerFactory.getLogger(ClientListeners.class);

    private final RelayServices services;
    private volatile Channel writeListener;
    private volatile Channel readListener;

    ClientListeners(RelayServices services) {
        this.services = services;
    }

    /** Binds both ports; on failure the port already bound stays open until {@link #close}. */
    void bind() throws InterruptedException {
        ProxyConfig config = services.config();
        writeListener = listen(config.writePort(), Role.PRIMARY);
        readListener = listen(config.readPort(), Role.REPLICA);
    }

    int writePort() {
        return ((InetSocketAddress) writeListener.localAddress()).getPort();
    }

    int readPort() {
        return ((InetSocketAddress) readListener.localAddress()).getPort();
    }

    boolean writePortListening() {
        Channel l = writeListener;
        return l != null && l.isActive();
    }

    /** Stops accepting clients; connected ones stay. */
    void close() {
        for (Channel l : new Channel[] {writeListener, readListener}) {
            if (l != null) {
                l.close().awaitUninterruptibly();
            }
        }
    }

    private Channel listen(int port, Role role) throws InterruptedException {
        ProxyConfig config = services.config();
        Transport transport = services.transport();
        ServerBootstrap b =
                new ServerBootstrap()
                        .group(transport.group())
                        .channel(transport.serverChannelClass())
                        .option(ChannelOption.SO_BACKLOG, 4096)
                        .option(ChannelOption.SO_REUSEADDR, true)
                        .childOption(ChannelOption.TCP_NODELAY, true)
                        .childHandler(
                                new ChannelInitializer<SocketChannel>() {
                                    @Override
                                    protected void initChannel(SocketChannel ch) {
                                        // The settings now, not at bind: a RELOAD applies to the
                                        // clients that connect after it.
                                        TcpOptions.apply(
                                                ch.config(),
                                                services.transport(),
                                                services.config().tcp());
                                        ch.pipeline().addLast("tls-sniff", new DirectTls(services));
                                        ch.pipeline()
                                                .addLast(
                                                        "frames",
                                                        FrameDecoder.frontendRuns(
                                                                config.maxMessageSize(),
                                                                services.messageMemory()));
                                        ch.pipeline()
                                                .addLast(
                                                        "session",
                                                        new ClientSession(services, role));
                                    }
                                });
        Channel ch;
        try {
            ch = b.bind(config.listenHost(), port).sync().channel();
        } catch (Exception e) {
            if (e instanceof InterruptedException ie) {
                throw ie;
            }
            throw new IllegalStateException(
                    "pgrelay.listen."
                            + (role == Role.PRIMARY ? "write_port" : "read_port")
                            + ": cannot listen on "
                            + config.listenHost()
                            + ":"
                            + port
                            + ": "
                            + e.getMessage(),
                    e);
        }
        log.info(
                "listening on {} for {} ({})",
                ch.localAddress(),
                role == Role.PRIMARY ? "writes" : "reads",
                role == Role.PRIMARY ? "primary" : "replicas, primary as fallback");
        return ch;
    }
}
