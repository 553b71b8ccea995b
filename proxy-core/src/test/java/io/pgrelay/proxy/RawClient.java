package io.pgrelay.proxy;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A logged-in client speaking the protocol byte by byte, for tests that send what no driver would.
 */
final class RawClient implements AutoCloseable {

    /** One backend message: its type and body. */
    record Message(char type, byte[] body) {

        /** The fields of an ErrorResponse or NoticeResponse. */
        Map<Character, String> fields() {
            Map<Character, String> fields = new HashMap<>();
            int i = 0;
            while (i < body.length && body[i] != 0) {
                char code = (char) body[i++];
                int start = i;
                while (body[i] != 0) {
                    i++;
                }
                fields.put(code, new String(body, start, i - start, StandardCharsets.UTF_8));
                i++;
            }
            return fields;
        }

        /** The columns of a DataRow as text (null for SQL NULL). */
        List<String> columns() {
            List<String> out = new ArrayList<>();
            int n = ((body[0] & 0xff) << 8) | (body[1] & 0xff);
            int at = 2;
            for (int c = 0; c < n; c++) {
                int len =
                        ((body[at] & 0xff) << 24)
                                | ((body[at + 1] & 0xff) << 16)
                                | ((body[at + 2] & 0xff) << 8)
                                | (body[at + 3] & 0xff);
                at += 4;
                out.add(len < 0 ? null : new String(body, at, len, StandardCharsets.UTF_8));
                at += Math.max(len, 0);
            }
            return out;
        }
    }

    private final Socket socket;
    private final DataInputStream in;
    private final DataOutputStream out;

    /** The ParameterStatus values the login was greeted with. */
    final Map<String, String> greeting;

    /** The BackendKeyData: process ID and secret key. */
    final int processId;

    final int secretKey;

    RawClient(int port, String user, String password, String database) throws IOException {
        this(port, user, password, database, Map.of());
    }

    /** Logs in with these extra startup parameters. */
    RawClient(int port, String user, String password, String database, Map<String, String> startup)
            throws IOException {
        socket = new Socket("127.0.0.1", port);
        socket.setSoTimeout(10_000);
        Map<String, String> got = ScramLogin.login(socket, user, password, database, startup);
        String[] key = got.remove(ScramLogin.BACKEND_KEY).split(" ");
        processId = Integer.parseInt(key[0]);
        secretKey = Integer.parseInt(key[1]);
        greeting = got;
        in = new DataInputStream(socket.getInputStream());
        out = new DataOutputStream(socket.getOutputStream());
    }

    /** The first column of the first row a simple query returns. */
    String one(String sql) throws IOException {
        send(query(sql));
        String value = null;
        for (Message m : untilReady()) {
            if (m.type() == 'E') {
                throw new IOException(sql + ": " + m.fields());
            }
            if (m.type() == 'D' && value == null) {
                value = m.columns().get(0);
            }
        }
        return value;
    }

    static RawClient app(RelayFixture relay) throws IOException {
        return new RawClient(relay.writePort(), "app", "app-secret", "appdb");
    }

    /** How long a read may wait (10 s unless set). */
    RawClient timeout(int millis) throws IOException {
        socket.setSoTimeout(millis);
        return this;
    }

    void send(byte[] bytes) throws IOException {
        out.write(bytes);
        out.flush();
    }

    /** A whole message of this type with this body (length computed). */
    static byte[] message(char type, byte[] body) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(type);
        int len = body.length + 4;
        b.write(len >>> 24);
        b.write(len >>> 16);
        b.write(len >>> 8);
        b.write(len);
        b.writeBytes(body);
        return b.toByteArray();
    }

    /**
     * An untyped startup packet: length, {@code version} (3 << 16 for a StartupMessage), then
     * {@code kv} as NUL-terminated name/value strings and the final NUL.
     */
    static byte[] startupPacket(int version, String... kv) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        for (String s : kv) {
            body.writeBytes(s.getBytes(StandardCharsets.UTF_8));
            body.write(0);
        }
        body.write(0);
        return ByteBuffer.allocate(8 + body.size())
                .putInt(8 + body.size())
                .putInt(version)
                .put(body.toByteArray())
                .array();
    }

    static byte[] query(String sql) {
        return message('Q', (sql + "\0").getBytes(StandardCharsets.UTF_8));
    }

    /** A CancelRequest for this client's key, as a new connection would send it. */
    static void cancel(int port, int processId, int secretKey) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.getOutputStream()
                    .write(
                            ByteBuffer.allocate(16)
                                    .putInt(16)
                                    .putInt(80877102)
                                    .putInt(processId)
                                    .putInt(secretKey)
                                    .array());
            s.getOutputStream().flush();
            // The server closes once it has read the request; wait for that, as libpq does.
            s.setSoTimeout(5_000);
            s.getInputStream().read();
        }
    }

    static byte[] sync() {
        return message('S', new byte[0]);
    }

    static byte[] bytes(int... values) {
        byte[] b = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            b[i] = (byte) values[i];
        }
        return b;
    }

    Message read() throws IOException {
        char type = (char) in.readUnsignedByte();
        byte[] body = new byte[in.readInt() - 4];
        in.readFully(body);
        return new Message(type, body);
    }

    /** Messages up to and including the next ReadyForQuery. */
    List<Message> untilReady() throws IOException {
        List<Message> got = new ArrayList<>();
        while (true) {
            Message m = read();
            got.add(m);
            if (m.type() == 'Z') {
                return got;
            }
        }
    }

    /** True if nothing arrives within the time given (the connection stays open). */
    boolean silentFor(int millis) throws IOException {
        int old = socket.getSoTimeout();
        socket.setSoTimeout(millis);
        try {
            int b = in.read();
            if (b < 0) {
                throw new EOFException("closed");
            }
            return false;
        } catch (SocketTimeoutException e) {
            return true;
        } finally {
            socket.setSoTimeout(old);
        }
    }

    /** True once the server has closed the connection (reads to the end). */
    boolean closedByServer() throws IOException {
        try {
            while (true) {
                read();
            }
        } catch (EOFException e) {
            return true;
        } catch (java.net.SocketException e) {
            return true;
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
