package io.pgrelay.bench;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Scrapes an HTTP endpoint in a loop from several keep-alive connections and prints how many
 * answers came back and their latency, to compare versions of pgrelay's HTTP face.
 *
 * <p>JDK only, so it runs as a single source file:
 *
 * <pre>
 * java benchmarks/src/main/java/io/pgrelay/bench/HttpScrapeLoad.java port [path] [connections] [seconds] [stalled]
 * </pre>
 *
 * Defaults: {@code /metrics}, 8 connections, 20 s, 0 stalled. {@code stalled} connections are
 * opened first, each sends one byte ("G") and nothing more, as a hostile client would. Each request
 * has a 5 s read timeout; a timed-out or failed request counts as an error and the connection is
 * opened again. Output: one line with answers (by status), errors, and p50 / p99 / max latency in
 * ms over the answered requests.
 */
public final class HttpScrapeLoad {

    private static final int TIMEOUT_MILLIS = 5000;

    private record Result(
            long[] latencies, int count, int ok, int notOk, int errors, String firstError) {}

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        String path = args.length > 1 ? args[1] : "/metrics";
        int connections = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        int seconds = args.length > 3 ? Integer.parseInt(args[3]) : 20;
        int stalled = args.length > 4 ? Integer.parseInt(args[4]) : 0;

        List<Socket> stalledSockets = new ArrayList<>();
        for (int i = 0; i < stalled; i++) {
            Socket s = new Socket();
            s.connect(new InetSocketAddress("127.0.0.1", port), TIMEOUT_MILLIS);
            s.getOutputStream().write('G');
            s.getOutputStream().flush();
            stalledSockets.add(s);
        }
        long deadline = System.nanoTime() + seconds * 1_000_000_000L;
        List<Thread> threads = new ArrayList<>();
        Result[] results = new Result[connections];
        for (int i = 0; i < connections; i++) {
            int index = i;
            Thread t = new Thread(() -> results[index] = run(port, path, deadline), "scrape-" + i);
            t.start();
            threads.add(t);
        }
        for (Thread t : threads) {
            t.join();
        }
        for (Socket s : stalledSockets) {
            s.close();
        }

        long[] all = new long[0];
        int ok = 0;
        int notOk = 0;
        int errors = 0;
        String firstError = null;
        for (Result r : results) {
            int base = all.length;
            all = Arrays.copyOf(all, base + r.count);
            System.arraycopy(r.latencies, 0, all, base, r.count);
            ok += r.ok;
            notOk += r.notOk;
            errors += r.errors;
            firstError = firstError != null ? firstError : r.firstError;
        }
        Arrays.sort(all);
        System.out.printf(
                Locale.ROOT,
                "%s %d connections %d s, %d stalled: answers %d (2xx %d, other %d), errors %d,"
                        + " p50 %.2f ms, p99 %.2f ms, max %.2f ms%s%n",
                path,
                connections,
                seconds,
                stalled,
                all.length,
                ok,
                notOk,
                errors,
                percentile(all, 0.50),
                percentile(all, 0.99),
                percentile(all, 1.0),
                firstError == null ? "" : " (first error: " + firstError + ")");
    }

    private static double percentile(long[] sorted, double p) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int index =
                (int) Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
        return sorted[index] / 1e6;
    }

    private static Result run(int port, String path, long deadline) {
        byte[] request =
                ("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n")
                        .getBytes(StandardCharsets.ISO_8859_1);
        long[] latencies = new long[1024];
        int count = 0;
        int ok = 0;
        int notOk = 0;
        int errors = 0;
        String firstError = null;
        Socket socket = null;
        while (System.nanoTime() < deadline) {
            try {
                if (socket == null) {
                    socket = new Socket();
                    socket.setTcpNoDelay(true);
                    socket.setSoTimeout(TIMEOUT_MILLIS);
                    socket.connect(new InetSocketAddress("127.0.0.1", port), TIMEOUT_MILLIS);
                }
                long start = System.nanoTime();
                OutputStream out = socket.getOutputStream();
                out.write(request);
                out.flush();
                int status = readResponse(socket.getInputStream());
                long took = System.nanoTime() - start;
                if (count == latencies.length) {
                    latencies = Arrays.copyOf(latencies, count * 2);
                }
                latencies[count++] = took;
                if (status / 100 == 2) {
                    ok++;
                } else {
                    notOk++;
                }
            } catch (IOException e) {
                errors++;
                firstError = firstError != null ? firstError : e.toString();
                closeQuietly(socket);
                socket = null;
            }
        }
        closeQuietly(socket);
        return new Result(latencies, count, ok, notOk, errors, firstError);
    }

    /** Reads one response with a Content-Length body; returns its status. */
    private static int readResponse(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream(256);
        int matched = 0;
        while (matched < 4) {
            int b = in.read();
            if (b < 0) {
                throw new EOFException("connection closed in a response head");
            }
            head.write(b);
            matched =
                    (b == '\r' && (matched == 0 || matched == 2))
                                    || (b == '\n' && (matched == 1 || matched == 3))
                            ? matched + 1
                            : (b == '\r' ? 1 : 0);
        }
        String[] lines = head.toString(StandardCharsets.ISO_8859_1).split("\r\n");
        int status = Integer.parseInt(lines[0].split(" ")[1]);
        long length = -1;
        for (String line : lines) {
            if (line.regionMatches(true, 0, "content-length:", 0, 15)) {
                length = Long.parseLong(line.substring(15).trim());
            }
        }
        if (length < 0) {
            throw new IOException("no Content-Length in response: " + lines[0]);
        }
        in.skipNBytes(length);
        return status;
    }

    private static void closeQuietly(Socket socket) {
        if (socket != null) {
            try {
                socket.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }
}
