package io.pgrelay.testkit;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A tiny TCP peer to run inside a {@link TestNetwork} host ({@code ip netns exec <ns> java -cp
 * <test classes> io.pgrelay.testkit.TcpEcho ...}), so the test bed needs no netcat or python.
 *
 * <ul>
 *   <li>{@code listen <address> <port>}: prints {@code listening} once bound; answers each line a
 *       connection sends with {@code echo <line> from <local address>}.
 *   <li>{@code connect <address> <port> <message> <timeout ms>}: prints the answer and exits 0, or
 *       prints {@code failed <exception class>: <message>} and exits 2.
 *   <li>{@code forward <address> <port> <target address> <target port>}: prints {@code listening}
 *       once bound; passes the bytes of each connection to a new connection to the target, both
 *       ways (a hop to put a host on a path, e.g. between pgrelay and etcd).
 * </ul>
 */
public final class TcpEcho {

    private TcpEcho() {}

    /** The command line that runs this class with the test JVM's java and class path. */
    public static List<String> command(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(System.getProperty("java.home") + "/bin/java");
        cmd.add("-Xshare:auto");
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-cp");
        try {
            // Only JDK classes are needed: the test classes directory (or jar) is enough.
            cmd.add(
                    Path.of(
                                    TcpEcho.class
                                            .getProtectionDomain()
                                            .getCodeSource()
                                            .getLocation()
                                            .toURI())
                            .toString());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        cmd.add(TcpEcho.class.getName());
        cmd.addAll(List.of(args));
        return cmd;
    }

    public static void main(String[] args) throws IOException {
        if (args.length == 3 && args[0].equals("listen")) {
            listen(args[1], Integer.parseInt(args[2]));
        } else if (args.length == 5 && args[0].equals("forward")) {
            forward(
                    args[1],
                    Integer.parseInt(args[2]),
                    new InetSocketAddress(args[3], Integer.parseInt(args[4])));
        } else if (args.length == 5 && args[0].equals("connect")) {
            System.exit(
                    connect(
                            args[1],
                            Integer.parseInt(args[2]),
                            args[3],
                            Integer.parseInt(args[4])));
        } else {
            System.err.println(
                    "usage: listen <address> <port> | connect <address> <port> <message> <timeout ms>"
                            + " | forward <address> <port> <target address> <target port>");
            System.exit(64);
        }
    }

    private static void listen(String address, int port) throws IOException {
        try (ServerSocket server = new ServerSocket()) {
            server.bind(new InetSocketAddress(address, port));
            System.out.println("listening");
            System.out.flush();
            while (true) {
                Socket s = server.accept();
                Thread t =
                        new Thread(
                                () -> {
                                    try (s;
                                            BufferedReader in =
                                                    new BufferedReader(
                                                            new InputStreamReader(
                                                                    s.getInputStream(),
                                                                    StandardCharsets.UTF_8));
                                            PrintWriter out =
                                                    new PrintWriter(
                                                            s.getOutputStream(),
                                                            true,
                                                            StandardCharsets.UTF_8)) {
                                        String line;
                                        while ((line = in.readLine()) != null) {
                                            out.println(
                                                    "echo "
                                                            + line
                                                            + " from "
                                                            + s.getLocalAddress().getHostAddress());
                                        }
                                    } catch (IOException ignored) {
                                        // the peer went away
                                    }
                                });
                t.setDaemon(true);
                t.start();
            }
        }
    }

    private static int connect(String address, int port, String message, int timeoutMillis) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(address, port), timeoutMillis);
            s.setSoTimeout(timeoutMillis);
            PrintWriter out = new PrintWriter(s.getOutputStream(), true, StandardCharsets.UTF_8);
            BufferedReader in =
                    new BufferedReader(
                            new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            out.println(message);
            System.out.println(in.readLine());
            return 0;
        } catch (IOException e) {
            System.out.println("failed " + e.getClass().getName() + ": " + e.getMessage());
            return 2;
        }
    }

    private static void forward(String address, int port, InetSocketAddress target)
            throws IOException {
        try (ServerSocket server = new ServerSocket()) {
            server.setReuseAddress(true);
            server.bind(new InetSocketAddress(address, port));
            System.out.println("listening");
            System.out.flush();
            while (true) {
                Socket in = server.accept();
                Socket out = new Socket();
                try {
                    out.connect(target, 5000);
                } catch (IOException e) {
                    in.close();
                    out.close();
                    continue;
                }
                pipe(in, out);
                pipe(out, in);
            }
        }
    }

    /** Copies from a to b until either ends, then closes both. */
    private static void pipe(Socket a, Socket b) {
        Thread t =
                new Thread(
                        () -> {
                            byte[] buf = new byte[16384];
                            try {
                                int n;
                                while ((n = a.getInputStream().read(buf)) > 0) {
                                    b.getOutputStream().write(buf, 0, n);
                                }
                            } catch (IOException ignored) {
                                // either side went away
                            }
                            try {
                                a.close();
                                b.close();
                            } catch (IOException ignored) {
                                // closing anyway
                            }
                        });
        t.setDaemon(true);
        t.start();
    }
}
