package io.pgrelay.bench;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * What a hostile or careless client can make a proxy hold, measured from outside (single-file tool:
 * {@code java HostileLoad.java PORT MODE ...}; benchmarks/hostile-memory.sh runs it against two
 * builds and reads their RSS). Logs in with a cleartext password (the proxy's auth_type plain),
 * user app / app-secret, database appdb.
 *
 * <ul>
 *   <li>{@code statements CLIENTS PER_CLIENT BYTES}: each client prepares PER_CLIENT distinct named
 *       statements of about BYTES, then holds them until stdin closes;
 *   <li>{@code flood BATCHES}: one client, 1,000 Parses of 50 kB per Sync, BATCHES times;
 *   <li>{@code big CLIENTS BYTES}: CLIENTS Query messages of BYTES each, all in flight at once
 *       (each client sends half, waits for the others, then the rest);
 *   <li>{@code idle CONNECTIONS LOGINS}: opens CONNECTIONS TCP connections that send nothing, waits
 *       two seconds, then tries LOGINS logins one after another while they stay open.
 * </ul>
 *
 * Prints one line per outcome: replies, SQLSTATEs, resets.
 */
public final class HostileLoad {

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        switch (args[1]) {
            case "statements" ->
                    statements(
                            port,
                            Integer.parseInt(args[2]),
                            Integer.parseInt(args[3]),
                            Integer.parseInt(args[4]));
            case "flood" -> flood(port, Integer.parseInt(args[2]));
            case "big" -> big(port, Integer.parseInt(args[2]), Integer.parseInt(args[3]));
            case "idle" -> idle(port, Integer.parseInt(args[2]), Integer.parseInt(args[3]));
            default -> throw new IllegalArgumentException("mode: statements, flood, big or idle");
        }
    }

    static void statements(int port, int clients, int perClient, int bytes) throws Exception {
        List<Conn> open = new ArrayList<>();
        int parsed = 0;
        List<String> errors = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            Conn conn = new Conn(port);
            open.add(conn);
            ByteArrayOutputStream batch = new ByteArrayOutputStream();
            for (int i = 0; i < perClient; i++) {
                batch.writeBytes(
                        parse(
                                "S_" + i,
                                "select " + c + ", " + i + ", '" + "x".repeat(bytes) + "'"));
            }
            batch.writeBytes(message('S', new byte[0]));
            conn.out.write(batch.toByteArray());
            conn.out.flush();
            for (Msg m : conn.untilReady()) {
                if (m.type == '1') {
                    parsed++;
                } else if (m.type == 'E') {
                    errors.add(m.field('C'));
                }
            }
        }
        System.out.println(
                "statements: "
                        + parsed
                        + " prepared over "
                        + clients
                        + " clients, errors "
                        + errors);
        System.out.println("holding; close stdin to end");
        System.out.flush();
        System.in.read();
        for (Conn c : open) {
            c.socket.close();
        }
    }

    static void flood(int port, int batches) throws Exception {
        Conn conn = new Conn(port);
        String pad = "x".repeat(50_000);
        int parsed = 0;
        for (int b = 0; b < batches; b++) {
            ByteArrayOutputStream batch = new ByteArrayOutputStream();
            for (int i = 0; i < 1000; i++) {
                int n = b * 1000 + i;
                batch.writeBytes(parse("s" + n, "select " + n + ", '" + pad + "'"));
            }
            batch.writeBytes(message('S', new byte[0]));
            try {
                conn.out.write(batch.toByteArray());
                conn.out.flush();
                List<String> errors = new ArrayList<>();
                for (Msg m : conn.untilReady()) {
                    if (m.type == '1') {
                        parsed++;
                    } else if (m.type == 'E') {
                        errors.add(m.field('C') + " " + m.field('M'));
                    }
                }
                System.out.println(
                        "batch "
                                + (b + 1)
                                + ": "
                                + parsed
                                + " prepared so far"
                                + (errors.isEmpty() ? "" : ", first error: " + errors.get(0)));
            } catch (IOException e) {
                System.out.println(
                        "batch "
                                + (b + 1)
                                + ": connection lost after "
                                + parsed
                                + " prepared: "
                                + e);
                return;
            }
        }
    }

    static void big(int port, int clients, int bytes) throws Exception {
        CyclicBarrier halfway = new CyclicBarrier(clients);
        ExecutorService pool =
                Executors.newFixedThreadPool(
                        clients,
                        r -> {
                            Thread t = new Thread(r);
                            t.setDaemon(
                                    true); // a client stuck on a dead proxy must not keep the tool
                            // alive
                            return t;
                        });
        List<Future<String>> results = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            int id = c;
            results.add(
                    pool.submit(
                            () -> {
                                Conn conn;
                                try {
                                    conn = new Conn(port);
                                } catch (IOException e) {
                                    return "client " + id + ": could not log in: " + e;
                                }
                                byte[] query = bigQuery("select 'client " + id + "' /*", bytes);
                                boolean refused = false;
                                try {
                                    conn.out.write(query, 0, query.length / 2);
                                    conn.out.flush();
                                } catch (IOException e) {
                                    refused =
                                            true; // the proxy may refuse it half way: read what it
                                    // said
                                }
                                try {
                                    // Every client arrives here, refused or not, so the others are
                                    // not left waiting.
                                    halfway.await(120, java.util.concurrent.TimeUnit.SECONDS);
                                } catch (Exception e) {
                                    // a client that never arrived: go on
                                }
                                if (!refused) {
                                    try {
                                        conn.out.write(
                                                query,
                                                query.length / 2,
                                                query.length - query.length / 2);
                                        conn.out.flush();
                                    } catch (IOException e) {
                                        // as above
                                    }
                                }
                                try {
                                    for (Msg m : conn.untilReady()) {
                                        if (m.type == 'E') {
                                            return "client "
                                                    + id
                                                    + ": "
                                                    + m.field('S')
                                                    + " "
                                                    + m.field('C')
                                                    + " "
                                                    + m.field('M');
                                        }
                                    }
                                    return "client " + id + ": answered";
                                } catch (IOException e) {
                                    return "client "
                                            + id
                                            + ": connection lost without an error: "
                                            + e;
                                }
                            }));
        }
        for (Future<String> r : results) {
            System.out.println(r.get());
        }
        pool.shutdown();
    }

    static void idle(int port, int connections, int logins) throws Exception {
        List<Socket> idle = new ArrayList<>();
        int refusedAtConnect = 0;
        for (int i = 0; i < connections; i++) {
            try {
                idle.add(new Socket("127.0.0.1", port));
            } catch (IOException e) {
                refusedAtConnect++;
            }
        }
        Thread.sleep(2000);
        int ok = 0;
        List<String> failures = new ArrayList<>();
        long start = System.nanoTime();
        for (int i = 0; i < logins; i++) {
            try {
                new Conn(port).socket.close();
                ok++;
            } catch (IOException e) {
                failures.add(e.getMessage());
            }
        }
        long millis = (System.nanoTime() - start) / 1_000_000;
        int closedByProxy = 0;
        for (Socket s : idle) {
            s.setSoTimeout(1);
            try {
                if (s.getInputStream().read() != -2) {
                    closedByProxy++; // an error message or end of stream: the proxy let it go
                }
            } catch (java.net.SocketTimeoutException stillOpen) {
                // still holding its slot
            } catch (IOException reset) {
                closedByProxy++;
            }
            s.close();
        }
        System.out.println(
                "idle: "
                        + idle.size()
                        + " open ("
                        + refusedAtConnect
                        + " refused at connect), then "
                        + ok
                        + "/"
                        + logins
                        + " logins succeeded in "
                        + millis
                        + " ms"
                        + (failures.isEmpty() ? "" : ", first failure: " + failures.get(0))
                        + "; "
                        + closedByProxy
                        + " idle connections had been closed by the proxy");
    }

    /**
     * A Query message of exactly {@code bytes} on the wire: {@code head}, padding, the comment's
     * end.
     */
    static byte[] bigQuery(String head, int bytes) {
        byte[] query = new byte[bytes];
        java.nio.ByteBuffer.wrap(query)
                .put((byte) 'Q')
                .putInt(bytes - 1)
                .put(head.getBytes(StandardCharsets.US_ASCII));
        java.util.Arrays.fill(query, 5 + head.length(), bytes - 3, (byte) 'x');
        query[bytes - 3] = '*';
        query[bytes - 2] = '/';
        query[bytes - 1] = 0;
        return query;
    }

    static byte[] parse(String name, String sql) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes((name + "\0" + sql + "\0").getBytes(StandardCharsets.UTF_8));
        body.write(0);
        body.write(0);
        return message('P', body.toByteArray());
    }

    static byte[] message(char type, byte[] body) {
        ByteArrayOutputStream b = new ByteArrayOutputStream(body.length + 5);
        b.write(type);
        int len = body.length + 4;
        b.write(len >>> 24);
        b.write(len >>> 16);
        b.write(len >>> 8);
        b.write(len);
        b.writeBytes(body);
        return b.toByteArray();
    }

    record Msg(char type, byte[] body) {
        String field(char code) {
            int i = 0;
            while (i < body.length && body[i] != 0) {
                char c = (char) body[i++];
                int start = i;
                while (body[i] != 0) {
                    i++;
                }
                if (c == code) {
                    return new String(body, start, i - start, StandardCharsets.UTF_8);
                }
                i++;
            }
            return null;
        }
    }

    static final class Conn {
        final Socket socket;
        final DataInputStream in;
        final DataOutputStream out;

        Conn(int port) throws IOException {
            socket = new Socket("127.0.0.1", port);
            socket.setSoTimeout(300_000);
            in = new DataInputStream(socket.getInputStream());
            out =
                    new DataOutputStream(
                            new java.io.BufferedOutputStream(socket.getOutputStream(), 1 << 16));
            ByteArrayOutputStream params = new ByteArrayOutputStream();
            for (String p : new String[] {"user", "app", "database", "appdb"}) {
                params.writeBytes(p.getBytes(StandardCharsets.UTF_8));
                params.write(0);
            }
            params.write(0);
            out.writeInt(8 + params.size());
            out.writeInt(3 << 16);
            out.write(params.toByteArray());
            out.flush();
            while (true) {
                Msg m = read();
                if (m.type == 'R' && m.body[3] == 3) {
                    out.write(message('p', "app-secret\0".getBytes(StandardCharsets.UTF_8)));
                    out.flush();
                } else if (m.type == 'E') {
                    throw new IOException("login failed: " + m.field('M'));
                } else if (m.type == 'Z') {
                    return;
                }
            }
        }

        Msg read() throws IOException {
            char type = (char) in.readUnsignedByte();
            byte[] body = new byte[in.readInt() - 4];
            in.readFully(body);
            return new Msg(type, body);
        }

        List<Msg> untilReady() throws IOException {
            List<Msg> got = new ArrayList<>();
            while (true) {
                Msg m = read();
                got.add(m);
                if (m.type == 'Z' || (m.type == 'E' && "FATAL".equals(m.field('S')))) {
                    return got;
                }
            }
        }
    }
}
