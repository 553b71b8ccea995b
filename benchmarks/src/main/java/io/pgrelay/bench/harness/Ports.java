package io.pgrelay.bench.harness;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Loopback ports in 20000-31999: below the kernel's ephemeral range, so the benchmark's own client
 * connections never take a port a listener is about to bind; never the same one twice in a run.
 */
final class Ports {
    private final Set<Integer> used = new HashSet<>();
    private final Proc proc;

    Ports(Proc proc) {
        this.proc = proc;
    }

    int free() {
        for (int i = 0; i < 500; i++) {
            int port = 20000 + ThreadLocalRandom.current().nextInt(12000);
            if (used.contains(port) || inUse(port)) {
                continue;
            }
            used.add(port);
            return port;
        }
        throw new HarnessException("no free port found");
    }

    private boolean inUse(int port) {
        if (Proc.onPath("ss")) {
            Proc.Result r = proc.capture(List.of("ss", "-Hltn", "sport = :" + port), Map.of());
            if (!r.output().isEmpty()) {
                return true;
            }
        }
        return accepts(port);
    }

    static boolean accepts(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(Settings.HOST, port), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Waits until the port accepts, giving up early when the process that should listen died. */
    static boolean waitFor(int port, int timeoutSeconds, Long pid) {
        long deadline = System.nanoTime() + timeoutSeconds * 1_000_000_000L;
        while (System.nanoTime() < deadline) {
            if (accepts(port)) {
                return true;
            }
            if (pid != null && !Proc.alive(pid)) {
                return false;
            }
            Proc.sleep(200);
        }
        return false;
    }

    /** Proxy-side established TCP connections on a listening port. */
    int established(int port) {
        Proc.Result r =
                proc.capture(
                        List.of("ss", "-Htn", "state", "established", "( sport = :" + port + " )"),
                        Map.of());
        return r.output().isEmpty() ? 0 : r.output().split("\n").length;
    }
}
