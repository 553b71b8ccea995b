package io.pgrelay.proxy;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelOption;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.nio.NioChannelOption;
import io.netty.channel.uring.IoUringChannelOption;
import io.netty.channel.uring.IoUringSocketChannel;
import io.pgrelay.config.TcpSettings;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import jdk.net.ExtendedSocketOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * PgBouncer's tcp_* settings as socket options of the running transport, for client and server
 * sockets: epoll and io_uring set TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and TCP_USER_TIMEOUT
 * directly; NIO the first three through the JDK's extended socket options, and has no
 * TCP_USER_TIMEOUT (a WARN at start and on RELOAD says so). Zero values are left out: the kernel's
 * default stays.
 */
final class TcpOptions {

    private static final Logger log = LoggerFactory.getLogger(TcpOptions.class);

    private static final AtomicBoolean warnedFailure = new AtomicBoolean();

    private TcpOptions() {}

    /** The options to set on a socket channel of {@code transport}, in order. */
    static Map<ChannelOption<?>, Object> of(Transport transport, TcpSettings tcp) {
        Map<ChannelOption<?>, Object> out = new LinkedHashMap<>();
        out.put(ChannelOption.SO_KEEPALIVE, tcp.keepalive());
        Class<?> type = transport.channelClass();
        boolean epoll = EpollSocketChannel.class.isAssignableFrom(type);
        boolean ioUring = IoUringSocketChannel.class.isAssignableFrom(type);
        if (tcp.keepalive()) {
            put(
                    out,
                    epoll
                            ? EpollChannelOption.TCP_KEEPIDLE
                            : ioUring
                                    ? IoUringChannelOption.TCP_KEEPIDLE
                                    : NioChannelOption.of(ExtendedSocketOptions.TCP_KEEPIDLE),
                    tcp.keepIdleSeconds());
            put(
                    out,
                    epoll
                            ? EpollChannelOption.TCP_KEEPINTVL
                            : ioUring
                                    ? IoUringChannelOption.TCP_KEEPINTVL
                                    : NioChannelOption.of(ExtendedSocketOptions.TCP_KEEPINTERVAL),
                    tcp.keepIntervalSeconds());
            put(
                    out,
                    epoll
                            ? EpollChannelOption.TCP_KEEPCNT
                            : ioUring
                                    ? IoUringChannelOption.TCP_KEEPCNT
                                    : NioChannelOption.of(ExtendedSocketOptions.TCP_KEEPCOUNT),
                    tcp.keepCount());
        }
        if (tcp.userTimeoutMillis() > 0) {
            if (epoll) {
                out.put(EpollChannelOption.TCP_USER_TIMEOUT, tcp.userTimeoutMillis());
            } else if (ioUring) {
                out.put(IoUringChannelOption.TCP_USER_TIMEOUT, tcp.userTimeoutMillis());
            } // NIO: none (warnIfIgnored says so)
        }
        return out;
    }

    /** Whether the transport can set TCP_USER_TIMEOUT (epoll, io_uring; not Java NIO). */
    static boolean supportsUserTimeout(Transport transport) {
        Class<?> type = transport.channelClass();
        return EpollSocketChannel.class.isAssignableFrom(type)
                || IoUringSocketChannel.class.isAssignableFrom(type);
    }

    /** At start and on RELOAD: a WARN if tcp_user_timeout is set where it cannot apply. */
    static void warnIfIgnored(Transport transport, TcpSettings tcp) {
        int ms = Math.max(tcp.userTimeoutMillis(), tcp.serverUserTimeoutMillis());
        if (ms > 0 && !supportsUserTimeout(transport)) {
            log.warn(
                    "tcp.tcp_user_timeout / tcp.server_tcp_user_timeout ({} ms) is ignored on the"
                            + " {} transport (Java has no TCP_USER_TIMEOUT; epoll and io_uring"
                            + " apply it): a connection whose peer went silent with data in flight"
                            + " waits for the kernel's retransmissions to give up",
                    ms,
                    transport.name());
        }
    }

    private static void put(Map<ChannelOption<?>, Object> out, ChannelOption<?> o, int value) {
        if (value > 0) {
            out.put(o, value);
        }
    }

    /** The transport's own options (io_uring's read buffer ring), then the tcp settings'. */
    private static Map<ChannelOption<?>, Object> all(Transport transport, TcpSettings tcp) {
        Map<ChannelOption<?>, Object> out = new LinkedHashMap<>(transport.channelOptions());
        out.putAll(of(transport, tcp));
        return out;
    }

    /** Sets the options on a server connection's bootstrap (before it connects). */
    @SuppressWarnings("unchecked")
    static Bootstrap apply(Bootstrap b, Transport transport, TcpSettings tcp) {
        for (Map.Entry<ChannelOption<?>, Object> e : all(transport, tcp).entrySet()) {
            b.option((ChannelOption<Object>) e.getKey(), e.getValue());
        }
        return b;
    }

    /** Sets the options on an accepted client channel. */
    @SuppressWarnings("unchecked")
    static void apply(ChannelConfig config, Transport transport, TcpSettings tcp) {
        for (Map.Entry<ChannelOption<?>, Object> e : all(transport, tcp).entrySet()) {
            try {
                if (!config.setOption((ChannelOption<Object>) e.getKey(), e.getValue())
                        && warnedFailure.compareAndSet(false, true)) {
                    log.warn("socket option {} is not supported here; ignored", e.getKey());
                }
            } catch (RuntimeException ex) {
                if (warnedFailure.compareAndSet(false, true)) {
                    log.warn(
                            "socket option {} = {} failed: {}",
                            e.getKey(),
                            e.getValue(),
                            ex.toString());
                }
            }
        }
    }
}
