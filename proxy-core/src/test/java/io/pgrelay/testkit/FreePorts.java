package io.pgrelay.testkit;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Hands out free TCP ports on the loopback interface (127.0.0.1).
 *
 * <p>Ports come from below the kernel's ephemeral range (net.ipv4.ip_local_port_range): an outgoing
 * connection is given a free port of that range as its local port, so a port found free there can
 * be taken by any client or server connection of the suite before its server binds it (CI saw
 * pgrelay's HTTP port taken that way), and a server restarted on the same port can find it taken
 * while it is down. Below the range only another bind can race, and every test's servers get their
 * ports from here. Every port handed out is remembered, so one JVM never gets the same port twice
 * (even if the first user has not bound it yet). Ports 5432/5433 (Debian's clusters) are never
 * returned.
 */
public final class FreePorts {

    private static final Set<Integer> HANDED_OUT = new HashSet<>();
    private static final Set<Integer> RESERVED = Set.of(5432, 5433);
    private static final int MAX_ATTEMPTS = 2000;

    private FreePorts() {}

    /** Returns a free loopback TCP port never handed out before in this JVM. */
    public static synchronized int next() {
        int low = ephemeralRangeStart();
        int from = Math.max(1024, low - 20_000);
        for (int attempt = 0; attempt < MAX_ATTEMPTS && from < low; attempt++) {
            int port = ThreadLocalRandom.current().nextInt(from, low);
            if (!RESERVED.contains(port) && !HANDED_OUT.contains(port) && isFree(port)) {
                HANDED_OUT.add(port);
                return port;
            }
        }
        throw new IllegalStateException(
                "no free loopback port found in " + from + ".." + (low - 1));
    }

    /** The first port of net.ipv4.ip_local_port_range (32768, Linux's default, if unreadable). */
    private static int ephemeralRangeStart() {
        try {
            // Not Files.readString: a /proc file says its size is 0, and that read comes back
            // short.
            String range =
                    Files.readAllLines(Path.of("/proc/sys/net/ipv4/ip_local_port_range")).get(0);
            return Integer.parseInt(range.trim().split("\\s+")[0]);
        } catch (IOException | RuntimeException e) {
            return 32768;
        }
    }

    /** Returns {@code count} distinct free loopback TCP ports. */
    public static synchronized int[] next(int count) {
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0: " + count);
        }
        int[] ports = new int[count];
        for (int i = 0; i < count; i++) {
            ports[i] = next();
        }
        return ports;
    }

    /** True if nothing accepts a bind on {@code 127.0.0.1:port} right now. */
    public static boolean isFree(int port) {
        try (ServerSocket socket = new ServerSocket(port, 1, InetAddress.getByName("127.0.0.1"))) {
            return socket.isBound();
        } catch (IOException e) {
            return false;
        }
    }
}
