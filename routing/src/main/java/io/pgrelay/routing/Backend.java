package io.pgrelay.routing;

import java.util.Objects;

/** A PostgreSQL server pgrelay can connect to, identified by its address. */
public record Backend(String host, int port) {

    public Backend {
        Objects.requireNonNull(host, "host");
        if (host.isBlank()) {
            throw new IllegalArgumentException("backend host must not be empty");
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("backend port: " + port + " (expected: 1..65535)");
        }
    }

    /** Parses {@code host:port}; IPv6 literals are written {@code [::1]:5432}. */
    public static Backend parse(String hostPort) {
        String s = hostPort.trim();
        int colon = s.lastIndexOf(':');
        if (colon <= 0 || colon == s.length() - 1) {
            throw new IllegalArgumentException(
                    "backend address '" + hostPort + "' (expected: host:port)");
        }
        String host = s.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(s.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    "backend address '" + hostPort + "': port is not a number");
        }
        return new Backend(host, port);
    }

    @Override
    public String toString() {
        return host.indexOf(':') >= 0 ? "[" + host + "]:" + port : host + ":" + port;
    }
}
