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
import io.netty.channel.uring.IoUringAdaptiveBufferRingAllocator;
import io.netty.channel.uring.IoUringBufferRingConfig;
import io.netty.channel.uring.IoUringChannelOption;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringIoHandlerConfig;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.channel.uring.IoUringSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.pgrelay.config.TcpSettings;
import java.util.Map;

/**
 * The event loops and channel types: Linux io_uring where the kernel allows it (the default), else
 * epoll when its native library loads, Java NIO otherwise. Client and server channels share one
 * group so a server connection can live on its client's loop. {@code why} says, for the start-up
 * log, why this one runs; {@code channelOptions} are set on every client and server socket.
 */
record Transport(
        String name,
        String why,
        int threads,
        EventLoopGroup group,
        Class<? extends ServerChannel> serverChannelClass,
        Class<? extends Channel> channelClass,
        Map<ChannelOption<?>, Object> channelOptions) {

    /** The io_uring buffer ring every socket reads into (a loop's ring; the id is per loop). */
    private static final short READ_BUFFER_GROUP = 0;

    /**
     * Buffers in each loop's ring. A read takes one (or, where the kernel consumes buffers
     * incrementally, part of one); the relay gets a slice that keeps the memory as long as it needs
     * it, and a used-up slot is refilled from the allocator. If every slot is used before a refill,
     * sockets read into buffers of their own meanwhile: the size bounds the ring, not throughput.
     */
    private static final short READ_BUFFER_RING_SIZE = 1024;

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
            // One system call submits a loop turn's writes to many sockets: from 64 clients on it
            // cut CPU per transaction by 34-43 % against epoll in the benchmark harness.
            IoUringIoHandlerConfig config = new IoUringIoHandlerConfig();
            Map<ChannelOption<?>, Object> options = Map.of();
            if (IoUring.isRegisterBufferRingSupported()) {
                // Without a ring every socket keeps a receive buffer of its own submitted to the
                // kernel while it waits: 2.7 kB more RSS per idle client than epoll, measured at
                // 10,000. With it the kernel picks a buffer when data arrives.
                config.setBufferRingConfig(
                        IoUringBufferRingConfig.builder()
                                .bufferGroupId(READ_BUFFER_GROUP)
                                .bufferRingSize(READ_BUFFER_RING_SIZE)
                                .batchSize(READ_BUFFER_RING_SIZE / 16)
                                .allocator(new IoUringAdaptiveBufferRingAllocator())
                                .build());
                options = Map.of(IoUringChannelOption.IO_URING_BUFFER_GROUP_ID, READ_BUFFER_GROUP);
            }
            return new Transport(
                    "io_uring",
                    "runtime.use_io_uring = true, and the kernel allows it"
                            + (options.isEmpty() ? "; no buffer ring (kernel before 5.19)" : ""),
                    n,
                    new MultiThreadIoEventLoopGroup(
                            n, factory, IoUringIoHandler.newFactory(config)),
                    IoUringServerSocketChannel.class,
                    IoUringSocketChannel.class,
                    options);
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
                    EpollSocketChannel.class,
                    Map.of());
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
                NioSocketChannel.class,
                Map.of());
    }
}
