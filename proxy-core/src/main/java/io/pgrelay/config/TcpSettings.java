package io.pgrelay.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.regex.Pattern;

/**
 * PgBouncer's TCP settings ({@code pgrelay.tcp}), for client and server sockets alike. A zero
 * leaves the kernel's default, as in PgBouncer.
 *
 * @param keepalive SO_KEEPALIVE
 * @param keepIdleSeconds TCP_KEEPIDLE: idle time before the first keepalive probe; 0 = kernel's
 * @param keepIntervalSeconds TCP_KEEPINTVL: between unanswered probes; 0 = kernel's
 * @param keepCount TCP_KEEPCNT: unanswered probes before the connection is dropped; 0 = kernel's
 * @param userTimeoutMillis TCP_USER_TIMEOUT: how long sent data may stay unacknowledged before the
 *     connection is dropped; 0 = kernel's
 * @param serverUserTimeoutMillis pgrelay's server_tcp_user_timeout: TCP_USER_TIMEOUT on server
 *     sockets only; 0 = as userTimeoutMillis
 */
public record TcpSettings(
        boolean keepalive,
        int keepIdleSeconds,
        int keepIntervalSeconds,
        int keepCount,
        int userTimeoutMillis,
        int serverUserTimeoutMillis) {

    /**
     * The settings for sockets to PostgreSQL: server_tcp_user_timeout, where set, in place of
     * tcp_user_timeout.
     */
    public TcpSettings forServers() {
        return serverUserTimeoutMillis == 0
                ? this
                : new TcpSettings(
                        keepalive,
                        keepIdleSeconds,
                        keepIntervalSeconds,
                        keepCount,
                        serverUserTimeoutMillis,
                        0);
    }

    /** Linux's limits: MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL (seconds), MAX_TCP_KEEPCNT. */
    static final int MAX_KEEP_SECONDS = 32767;

    static final int MAX_KEEP_COUNT = 127;

    /** A bare number for tcp_user_timeout: milliseconds, as in PgBouncer. */
    private static final Pattern NUMBER = Pattern.compile("\\d+(\\.\\d+)?");

    static TcpSettings from(Config c) {
        return new TcpSettings(
                c.getBoolean("tcp.tcp_keepalive"),
                seconds(c, "tcp.tcp_keepidle"),
                seconds(c, "tcp.tcp_keepintvl"),
                count(c, "tcp.tcp_keepcnt"),
                millis(c, "tcp.tcp_user_timeout"),
                millis(c, "tcp.server_tcp_user_timeout"));
    }

    private static int seconds(Config c, String path) {
        String raw = String.valueOf(c.getValue(path).unwrapped()).trim();
        Duration d =
                NUMBER.matcher(raw).matches()
                        ? Duration.ofNanos(new BigDecimal(raw).movePointRight(9).longValueExact())
                        : c.getDuration(path);
        if (d.isNegative() || d.getNano() != 0 || d.getSeconds() > MAX_KEEP_SECONDS) {
            throw new ConfigException.BadValue(
                    "pgrelay." + path,
                    raw
                            + " (expected: whole seconds, 0.."
                            + MAX_KEEP_SECONDS
                            + "; 0 = kernel default)");
        }
        return (int) d.getSeconds();
    }

    private static int count(Config c, String path) {
        int v = c.getInt(path);
        if (v < 0 || v > MAX_KEEP_COUNT) {
            throw new ConfigException.BadValue(
                    "pgrelay." + path,
                    v + " (expected: 0.." + MAX_KEEP_COUNT + "; 0 = kernel default)");
        }
        return v;
    }

    private static int millis(Config c, String path) {
        String raw = String.valueOf(c.getValue(path).unwrapped()).trim();
        long ms;
        if (NUMBER.matcher(raw).matches()) {
            ms = new BigDecimal(raw).setScale(0, java.math.RoundingMode.UP).longValueExact();
        } else {
            Duration d = c.getDuration(path);
            ms = d.isNegative() ? -1 : d.plusNanos(999_999).toMillis();
        }
        if (ms < 0 || ms > Integer.MAX_VALUE) {
            throw new ConfigException.BadValue(
                    "pgrelay." + path,
                    raw
                            + " (expected: 0.."
                            + Integer.MAX_VALUE
                            + " ms; a bare number is milliseconds, as in PgBouncer; 0 = kernel default)");
        }
        return (int) ms;
    }
}
