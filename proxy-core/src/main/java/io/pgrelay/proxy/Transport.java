package io.pgrelay.proxy;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.channel.uring.IoUringSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.pgrelay.config.TcpSettings;

/**
 * The event loops and channel types: Linux io_uring when asked for and the kernel allows it, else
 * epoll when its native library loads, Java NIO otherwise. Client and server channels share one
 * group so a server connection can live on its client's loop. {@code why} says, for the start-up
 * log, why this one runs.
 */
record Transport(
        String name,
        String why,
        int threads,
        EventLoopGroup group,
        Class<? extends ServerChannel> serverChannelClass,
        Class<? extends Channel> channelClass) {

    /**
     * A Bootstrap for connections to PostgreSQL servers: no Nagle, bounded connect, keepalive and
     * user timeout as the tcp settings say ({@link TcpOptions}).
     */
    Bootstrap serverBootstrap(EventLoopGroup loop, long connectTimeoutMillis, TcpSettings tcp) {
        Bootstrap b =
                new Bootstrap()
                        .group(loop)
                        .channel(channelClass)
                        .option(ChannelOption.TCP_NODELAY, true)
                        .option(
                                ChannelOption.CONNECT_TIMEOUT_MILLIS,
                                (int) Math.min(Integer.MAX_VALUE, connectTimeoutMillis));
        return TcpOptions.apply(b, this, tcp);
    }

    static Transport create(boolean preferEpoll, boolean preferIoUring, int threads) {
        // Default: half the cores. pgrelay shares its machine with PostgreSQL (and, in tests, the
        // load generator); on 2 cores one loop measured 20-30 % more throughput than two, because
        // a client and its server connection on different loops hop threads on every message.
        int n = threads > 0 ? threads : Math.max(1, Runtime.getRuntime().availableProcessors() / 2);
        DefaultThreadFactory factory = new DefaultThreadFactory("pgrelay-io", true);
        if (preferIoUring && IoUring.isAvailable()) {
            // One system call submits a loop turn's writes to many sockets: at 256 clients it cut
            // CPU per transaction by 15-28 % against epoll in the benchmark harness.
            return new Transport(
                    "io_uring",
                    "runtime.use_io_uring, and the kernel allows it",
                    n,
                    new MultiThreadIoEventLoopGroup(n, factory, IoUringIoHandler.newFactory()),
                    IoUringServerSocketChannel.class,
                    IoUringSocketChannel.class);
        }
        String notIoUring =
                preferIoUring
                        ? "io_uring not available: " + IoUring.unavailabilityCause()
                        : "runtime.use_io_uring = false";
        if (preferEpoll && Epoll.isAvailable()) {
            return new Transport(
                    "epoll",
                    notIoUring,
                    n,
                    new MultiThreadIoEventLoopGroup(n, factory, EpollIoHandler.newFactory()),
                    EpollServerSocketChannel.class,
                    EpollSocketChannel.class);
        }
        return new Transport(
                "nio",
                notIoUring
                        + "; "
                        + (preferEpoll
                                ? "epoll not available: " + Epoll.unavailabilityCause()
                                : "runtime.use_epoll = false"),
                n,
                new MultiThreadIoEventLoopGroup(n, factory, NioIoHandler.newFactory()),
                NioServerSocketChannel.class,
                NioSocketChannel.class);
    }
}
