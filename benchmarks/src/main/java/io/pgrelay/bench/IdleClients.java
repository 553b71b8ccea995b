package io.pgrelay.bench;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Opens N authenticated PostgreSQL client connections and keeps them idle, to measure what an idle
 * client costs a proxy (used by {@code benchmarks/pgbench-compare.sh --idle-clients N}).
 *
 * <p>JDK only, so it runs as a single source file:
 *
 * <pre>
 * java benchmarks/src/main/java/io/pgrelay/bench/IdleClients.java host port user password db count [threads]
 * </pre>
 *
 * Each connection sends a v3 StartupMessage, logs in with SCRAM-SHA-256 (or md5 / cleartext if the
 * server asks for that), reads ParameterStatus / BackendKeyData up to ReadyForQuery, and then sends
 * nothing more. Output on stdout: progress lines, then {@code failed F: <first error>} if any login
 * failed, then {@code ready K} (K = connections logged in). The program then holds the sockets
 * until stdin reaches end-of-file (or it gets SIGINT/SIGTERM), sends Terminate on each, closes them
 * and prints {@code closed K}.
 */
public final class IdleClients {
    private static final int PROTOCOL_V3 = 196608;
    private static final SecureRandom RANDOM = new SecureRandom();

    /**
     * SCRAM SaltedPassword per (salt, iterations): a server that reuses its salt costs one PBKDF2.
     */
    private static final Map<String, byte[]> SALTED = new ConcurrentHashMap<>();

    private final String host;
    private final int port;
    private final String user;
    private final String password;
    private final String database;
    private final ConcurrentLinkedQueue<Socket> open = new ConcurrentLinkedQueue<>();

    private IdleClients(String host, int port, String user, String password, String database) {
        this.host = host;
        this.port = port;
        this.user = user;
        this.password = password;
        this.database = database;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 6 || args.length > 7) {
            System.err.println("usage: IdleClients host port user password db count [threads]");
            System.exit(2);
        }
        int count = Integer.parseInt(args[5]);
        int threads = args.length > 6 ? Integer.parseInt(args[6]) : 4;
        threads = Math.max(1, Math.min(threads, Math.max(1, count)));
        IdleClients clients =
                new IdleClients(args[0], Integer.parseInt(args[1]), args[2], args[3], args[4]);
        Runtime.getRuntime().addShutdownHook(new Thread(clients::closeAll, "idle-clients-close"));
        int ok = clients.openAll(count, threads);
        System.out.println("ready " + ok);
        System.out.flush();
        // Hold the connections until stdin closes (the harness closes its end) or a signal arrives.
        InputStream in = System.in;
        byte[] buf = new byte[256];
        while (in.read(buf) >= 0) {
            // discard
        }
        int closed = clients.closeAll();
        System.out.println("closed " + closed);
        System.out.flush();
    }

    private int openAll(int count, int threads) throws InterruptedException {
        AtomicInteger next = new AtomicInteger();
        AtomicInteger ok = new AtomicInteger();
        AtomicInteger failed = new AtomicInteger();
        AtomicReference<String> firstError = new AtomicReference<>();
        int step = Math.max(1, Math.min(1000, count / 10));
        long start = System.nanoTime();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            Thread worker =
                    new Thread(
                            () -> {
                                while (next.getAndIncrement() < count) {
                                    try {
                                        open.add(login());
                                        int n = ok.incrementAndGet();
                                        if (n % step == 0) {
                                            double secs = (System.nanoTime() - start) / 1e9;
                                            System.out.printf(
                                                    "opened %d/%d (%.0f/s)%n", n, count, n / secs);
                                            System.out.flush();
                                        }
                                    } catch (IOException
                                            | GeneralSecurityException
                                            | RuntimeException e) {
                                        failed.incrementAndGet();
                                        firstError.compareAndSet(null, e.toString());
                                    }
                                }
                            },
                            "idle-clients-" + t);
            workers.add(worker);
            worker.start();
        }
        for (Thread worker : workers) {
            worker.join();
        }
        if (failed.get() > 0) {
            System.out.println("failed " + failed.get() + ": " + firstError.get());
        }
        double secs = (System.nanoTime() - start) / 1e9;
        System.out.printf(
                "opened %d connections in %.1f s with %d threads%n", ok.get(), secs, threads);
        return ok.get();
    }

    private int closeAll() {
        int n = 0;
        Socket s;
        byte[] terminate = {'X', 0, 0, 0, 4};
        while ((s = open.poll()) != null) {
            try (Socket socket = s) {
                socket.getOutputStream().write(terminate);
                n++;
            } catch (IOException e) {
                // already gone
            }
        }
        return n;
    }

    /** One connection, logged in and at ReadyForQuery. */
    private Socket login() throws IOException, GeneralSecurityException {
        Socket socket = new Socket();
        boolean done = false;
        try {
            socket.setTcpNoDelay(true);
            socket.connect(new InetSocketAddress(host, port), 10_000);
            socket.setSoTimeout(30_000);
            DataInputStream in =
                    new DataInputStream(
                            new java.io.BufferedInputStream(socket.getInputStream(), 1024));
            OutputStream out = socket.getOutputStream();
            out.write(startupMessage());
            out.flush();
            handshake(in, out);
            socket.setSoTimeout(0);
            done = true;
            return socket;
        } finally {
            if (!done) {
                socket.close();
            }
        }
    }

    private byte[] startupMessage() {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        writeInt(body, PROTOCOL_V3);
        writeCString(body, "user");
        writeCString(body, user);
        writeCString(body, "database");
        writeCString(body, database);
        body.write(0);
        ByteArrayOutputStream msg = new ByteArrayOutputStream();
        writeInt(msg, body.size() + 4);
        msg.writeBytes(body.toByteArray());
        return msg.toByteArray();
    }

    private void handshake(DataInputStream in, OutputStream out)
            throws IOException, GeneralSecurityException {
        Scram scram = null;
        while (true) {
            int type = in.read();
            if (type < 0) {
                throw new EOFException("server closed the connection during login");
            }
            int len = in.readInt();
            if (len < 4 || len > 1 << 20) {
                throw new IOException(
                        "bad message length " + len + " for type '" + (char) type + "'");
            }
            byte[] body = new byte[len - 4];
            in.readFully(body);
            switch (type) {
                case 'R' -> {
                    int code = getInt(body, 0);
                    switch (code) {
                        case 0 -> {} // AuthenticationOk
                        case 3 -> send(out, 'p', cString(password));
                        case 5 -> send(out, 'p', cString(md5Password(body)));
                        case 10 -> {
                            String mechanisms =
                                    new String(body, 4, body.length - 4, StandardCharsets.UTF_8);
                            if (!List.of(mechanisms.split("\0")).contains("SCRAM-SHA-256")) {
                                throw new IOException(
                                        "server offers no SCRAM-SHA-256: "
                                                + mechanisms.replace('\0', ' '));
                            }
                            scram = new Scram();
                            send(out, 'p', scram.initialResponse());
                        }
                        case 11 -> {
                            if (scram == null) {
                                throw new IOException("SASLContinue without SASL");
                            }
                            send(
                                    out,
                                    'p',
                                    scram.finalMessage(
                                            new String(
                                                    body,
                                                    4,
                                                    body.length - 4,
                                                    StandardCharsets.UTF_8)));
                        }
                        case 12 -> {
                            if (scram == null) {
                                throw new IOException("SASLFinal without SASL");
                            }
                            scram.verifyServerFinal(
                                    new String(body, 4, body.length - 4, StandardCharsets.UTF_8));
                        }
                        default ->
                                throw new IOException("unsupported authentication request " + code);
                    }
                }
                case 'E' -> throw new IOException("server error: " + errorText(body));
                case 'S', 'K', 'N' -> {} // ParameterStatus, BackendKeyData, NoticeResponse
                case 'Z' -> {
                    return; // ReadyForQuery
                }
                default ->
                        throw new IOException(
                                "unexpected message '" + (char) type + "' during login");
            }
        }
    }

    private String md5Password(byte[] authBody) throws GeneralSecurityException {
        byte[] salt = new byte[4];
        System.arraycopy(authBody, 4, salt, 0, 4);
        MessageDigest md5 = MessageDigest.getInstance("MD5");
        String inner = hex(md5.digest((password + user).getBytes(StandardCharsets.UTF_8)));
        md5.update(inner.getBytes(StandardCharsets.US_ASCII));
        md5.update(salt);
        return "md5" + hex(md5.digest());
    }

    /** SCRAM-SHA-256 client (RFC 5802/7677) without channel binding, as libpq does without TLS. */
    private final class Scram {
        private final String clientNonce;
        private final String clientFirstBare;
        private byte[] expectedServerSignature;

        Scram() {
            byte[] nonce = new byte[18];
            RANDOM.nextBytes(nonce);
            clientNonce = Base64.getEncoder().encodeToString(nonce);
            // PostgreSQL takes the user name from the startup message; the SCRAM one stays empty.
            clientFirstBare = "n=,r=" + clientNonce;
        }

        byte[] initialResponse() {
            byte[] first = ("n,," + clientFirstBare).getBytes(StandardCharsets.UTF_8);
            ByteArrayOutputStream msg = new ByteArrayOutputStream();
            writeCString(msg, "SCRAM-SHA-256");
            writeInt(msg, first.length);
            msg.writeBytes(first);
            return msg.toByteArray();
        }

        byte[] finalMessage(String serverFirst) throws IOException, GeneralSecurityException {
            Map<Character, String> attrs = attributes(serverFirst);
            String nonce = attrs.get('r');
            String saltB64 = attrs.get('s');
            String iterText = attrs.get('i');
            if (nonce == null
                    || saltB64 == null
                    || iterText == null
                    || !nonce.startsWith(clientNonce)) {
                throw new IOException("bad SCRAM server-first-message: " + serverFirst);
            }
            int iterations = Integer.parseInt(iterText);
            byte[] salted = SALTED.get(saltB64 + "/" + iterations);
            if (salted == null) {
                salted =
                        hi(
                                password.getBytes(StandardCharsets.UTF_8),
                                Base64.getDecoder().decode(saltB64),
                                iterations);
                SALTED.put(saltB64 + "/" + iterations, salted);
            }
            String clientFinalWithoutProof = "c=biws,r=" + nonce; // biws = base64("n,,")
            byte[] authMessage =
                    (clientFirstBare + "," + serverFirst + "," + clientFinalWithoutProof)
                            .getBytes(StandardCharsets.UTF_8);
            byte[] clientKey = hmac(salted, "Client Key".getBytes(StandardCharsets.US_ASCII));
            byte[] storedKey = MessageDigest.getInstance("SHA-256").digest(clientKey);
            byte[] clientSignature = hmac(storedKey, authMessage);
            byte[] proof = new byte[clientKey.length];
            for (int i = 0; i < proof.length; i++) {
                proof[i] = (byte) (clientKey[i] ^ clientSignature[i]);
            }
            byte[] serverKey = hmac(salted, "Server Key".getBytes(StandardCharsets.US_ASCII));
            expectedServerSignature = hmac(serverKey, authMessage);
            return (clientFinalWithoutProof + ",p=" + Base64.getEncoder().encodeToString(proof))
                    .getBytes(StandardCharsets.UTF_8);
        }

        void verifyServerFinal(String serverFinal) throws IOException {
            Map<Character, String> attrs = attributes(serverFinal);
            if (attrs.containsKey('e')) {
                throw new IOException("SCRAM error from server: " + attrs.get('e'));
            }
            String v = attrs.get('v');
            if (v == null
                    || expectedServerSignature == null
                    || !MessageDigest.isEqual(
                            Base64.getDecoder().decode(v), expectedServerSignature)) {
                throw new IOException("SCRAM server signature does not verify: " + serverFinal);
            }
        }
    }

    private static Map<Character, String> attributes(String message) {
        Map<Character, String> attrs = new HashMap<>();
        for (String part : message.split(",")) {
            if (part.length() >= 2 && part.charAt(1) == '=') {
                attrs.put(part.charAt(0), part.substring(2));
            }
        }
        return attrs;
    }

    /** Hi(password, salt, i) of RFC 5802: PBKDF2 with HMAC-SHA-256, one output block. */
    private static byte[] hi(byte[] password, byte[] salt, int iterations)
            throws GeneralSecurityException {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(password, "HmacSHA256"));
        mac.update(salt);
        byte[] u = mac.doFinal(new byte[] {0, 0, 0, 1});
        byte[] result = u.clone();
        for (int n = 1; n < iterations; n++) {
            u = mac.doFinal(u);
            for (int k = 0; k < result.length; k++) {
                result[k] ^= u[k];
            }
        }
        return result;
    }

    private static byte[] hmac(byte[] key, byte[] data) throws GeneralSecurityException {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(data);
    }

    private static String errorText(byte[] body) {
        StringBuilder sb = new StringBuilder();
        int i = 0;
        while (i < body.length && body[i] != 0) {
            char field = (char) body[i++];
            int end = i;
            while (end < body.length && body[end] != 0) {
                end++;
            }
            String value = new String(body, i, end - i, StandardCharsets.UTF_8);
            if (field == 'S' || field == 'C' || field == 'M') {
                sb.append(sb.length() == 0 ? "" : " ").append(value);
            }
            i = end + 1;
        }
        return sb.toString();
    }

    private static void send(OutputStream out, char type, byte[] body) throws IOException {
        byte[] msg = new byte[5 + body.length];
        msg[0] = (byte) type;
        putInt(msg, 1, body.length + 4);
        System.arraycopy(body, 0, msg, 5, body.length);
        out.write(msg);
        out.flush();
    }

    private static byte[] cString(String s) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        writeCString(out, s);
        return out.toByteArray();
    }

    private static void writeCString(ByteArrayOutputStream out, String s) {
        out.writeBytes(s.getBytes(StandardCharsets.UTF_8));
        out.write(0);
    }

    private static void writeInt(ByteArrayOutputStream out, int v) {
        out.write(v >>> 24);
        out.write(v >>> 16);
        out.write(v >>> 8);
        out.write(v);
    }

    private static void putInt(byte[] b, int off, int v) {
        b[off] = (byte) (v >>> 24);
        b[off + 1] = (byte) (v >>> 16);
        b[off + 2] = (byte) (v >>> 8);
        b[off + 3] = (byte) v;
    }

    private static int getInt(byte[] b, int off) {
        return ((b[off] & 0xff) << 24)
                | ((b[off + 1] & 0xff) << 16)
                | ((b[off + 2] & 0xff) << 8)
                | (b[off + 3] & 0xff);
    }

    private static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            sb.append(Character.forDigit((b >> 4) & 0xf, 16))
                    .append(Character.forDigit(b & 0xf, 16));
        }
        return sb.toString();
    }
}
