package io.pgrelay.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.pgrelay.admin.AdminView.ConfigRow;
import io.pgrelay.admin.AdminView.ConnectionRow;
import io.pgrelay.admin.AdminView.DatabaseRow;
import io.pgrelay.admin.AdminView.Lists;
import io.pgrelay.admin.AdminView.PeerRow;
import io.pgrelay.admin.AdminView.PoolRow;
import io.pgrelay.admin.AdminView.StatCounters;
import io.pgrelay.admin.AdminView.StatsRow;
import io.pgrelay.admin.AdminView.TopologyRow;
import io.pgrelay.admin.AdminView.UserRow;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * An AdminSession wired to a fake view and control, with frontend frames built by hand and backend
 * replies decoded into {@link Msg}s. Every buffer given to the session is remembered so a test can
 * check it was released; every buffer the session wrote is released on decode.
 */
final class ConsoleHarness {

    final FakeView view = new FakeView();
    final FakeControl control = new FakeControl();

    /**
     * Continuations the session scheduled; run with {@link #runScheduled()}, as the event loop
     * would.
     */
    final ArrayDeque<Runnable> scheduled = new ArrayDeque<>();

    final List<ByteBuf> written = new ArrayList<>();
    final List<ByteBuf> sent = new ArrayList<>();
    boolean outputClosed;
    final AdminSession session;

    ConsoleHarness(boolean mayControl) {
        this(mayControl, UnpooledByteBufAllocator.DEFAULT);
    }

    ConsoleHarness(boolean mayControl, ByteBufAllocator alloc) {
        session =
                new AdminSession(
                        view,
                        control,
                        mayControl,
                        alloc,
                        scheduled::add,
                        new AdminSession.Output() {
                            @Override
                            public void write(ByteBuf messages) {
                                written.add(messages);
                            }

                            @Override
                            public void close() {
                                outputClosed = true;
                            }
                        });
    }

    void send(ByteBuf... frames) {
        for (ByteBuf f : frames) {
            sent.add(f);
            session.onFrame(f);
        }
    }

    void runScheduled() {
        Runnable r;
        while ((r = scheduled.poll()) != null) {
            r.run();
        }
    }

    /** Decodes and releases everything written so far. */
    List<Msg> replies() {
        List<Msg> msgs = new ArrayList<>();
        for (ByteBuf b : written) {
            while (b.isReadable()) {
                char type = (char) b.readByte();
                int length = b.readInt();
                byte[] body = new byte[length - 4];
                b.readBytes(body);
                msgs.add(new Msg(type, body));
            }
            b.release();
        }
        written.clear();
        return msgs;
    }

    /** The message types of the replies, as one string, e.g. "TDDCZ". */
    static String types(List<Msg> msgs) {
        StringBuilder s = new StringBuilder();
        msgs.forEach(m -> s.append(m.type));
        return s.toString();
    }

    void assertInputsReleased() {
        for (ByteBuf b : sent) {
            assertEquals(0, b.refCnt(), "frame given to the session was not released");
        }
    }

    // ---- frontend frames ----

    static ByteBuf frame(char type, ByteBuf body) {
        ByteBuf f = Unpooled.buffer(5 + body.readableBytes());
        f.writeByte(type).writeInt(4 + body.readableBytes()).writeBytes(body);
        body.release();
        return f;
    }

    private static ByteBuf cstr(ByteBuf b, String s) {
        b.writeBytes(s.getBytes(StandardCharsets.UTF_8)).writeByte(0);
        return b;
    }

    static ByteBuf query(String sql) {
        return frame('Q', cstr(Unpooled.buffer(), sql));
    }

    static ByteBuf parse(String name, String sql) {
        ByteBuf b = Unpooled.buffer();
        cstr(cstr(b, name), sql).writeShort(0);
        return frame('P', b);
    }

    static ByteBuf bind(String portal, String statement, int... resultFormats) {
        ByteBuf b = Unpooled.buffer();
        cstr(cstr(b, portal), statement);
        b.writeShort(0).writeShort(0).writeShort(resultFormats.length);
        for (int f : resultFormats) {
            b.writeShort(f);
        }
        return frame('B', b);
    }

    static ByteBuf describe(char kind, String name) {
        ByteBuf b = Unpooled.buffer().writeByte(kind);
        return frame('D', cstr(b, name));
    }

    static ByteBuf execute(String portal, int maxRows) {
        ByteBuf b = cstr(Unpooled.buffer(), portal).writeInt(maxRows);
        return frame('E', b);
    }

    static ByteBuf close(char kind, String name) {
        ByteBuf b = Unpooled.buffer().writeByte(kind);
        return frame('C', cstr(b, name));
    }

    static ByteBuf sync() {
        return frame('S', Unpooled.buffer());
    }

    static ByteBuf flush() {
        return frame('H', Unpooled.buffer());
    }

    static ByteBuf terminate() {
        return frame('X', Unpooled.buffer());
    }

    // ---- backend messages ----

    record Column(String name, int oid, int format) {}

    record Msg(char type, byte[] body) {

        ByteBuf buf() {
            return Unpooled.wrappedBuffer(body);
        }

        List<Column> columns() {
            assertEquals('T', type);
            ByteBuf b = buf();
            int n = b.readShort();
            List<Column> cols = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String name = readCString(b);
                b.skipBytes(6);
                int oid = b.readInt();
                b.skipBytes(6);
                cols.add(new Column(name, oid, b.readShort()));
            }
            return cols;
        }

        List<String> columnNames() {
            return columns().stream().map(Column::name).toList();
        }

        /** DataRow values as text (null for SQL NULL). */
        List<String> values() {
            List<String> out = new ArrayList<>();
            for (byte[] v : rawValues()) {
                out.add(v == null ? null : new String(v, StandardCharsets.UTF_8));
            }
            return out;
        }

        List<byte[]> rawValues() {
            assertEquals('D', type);
            ByteBuf b = buf();
            int n = b.readShort();
            List<byte[]> out = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                int len = b.readInt();
                if (len < 0) {
                    out.add(null);
                } else {
                    byte[] v = new byte[len];
                    b.readBytes(v);
                    out.add(v);
                }
            }
            return out;
        }

        String tag() {
            assertEquals('C', type);
            return readCString(buf());
        }

        /** ErrorResponse / NoticeResponse fields by code. */
        Map<Character, String> fields() {
            ByteBuf b = buf();
            Map<Character, String> f = new LinkedHashMap<>();
            byte code;
            while ((code = b.readByte()) != 0) {
                f.put((char) code, readCString(b));
            }
            return f;
        }

        String sqlState() {
            assertEquals('E', type, "expected an ErrorResponse");
            return fields().get('C');
        }

        char status() {
            assertEquals('Z', type);
            return (char) body[0];
        }

        @Override
        public String toString() {
            return type + ByteBufUtil.hexDump(body);
        }
    }

    private static String readCString(ByteBuf b) {
        int end = b.indexOf(b.readerIndex(), b.writerIndex(), (byte) 0);
        String s = b.toString(b.readerIndex(), end - b.readerIndex(), StandardCharsets.UTF_8);
        b.readerIndex(end + 1);
        return s;
    }

    /** Name → value of a DataRow against its RowDescription. */
    static Map<String, String> row(Msg description, Msg dataRow) {
        List<String> names = description.columnNames();
        List<String> values = dataRow.values();
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            m.put(names.get(i), values.get(i));
        }
        return m;
    }

    // ---- fakes ----

    static final class FakeView implements AdminView {

        State state = State.ACTIVE;
        int showCalls;

        @Override
        public List<PoolRow> pools() {
            showCalls++;
            return List.of(
                    new PoolRow(
                            "app",
                            "alice",
                            3,
                            1,
                            0,
                            0,
                            2,
                            0,
                            0,
                            5,
                            0,
                            0,
                            1,
                            2_500_000,
                            "transaction",
                            null,
                            "primary",
                            "10.0.0.1:5432",
                            0));
        }

        @Override
        public List<StatsRow> stats() {
            showCalls++;
            StatCounters total = new StatCounters(10, 20, 30, 4000, 5000, 600, 700, 80, 9, 8, 7, 6);
            StatCounters avg =
                    new StatCounters(1, 2, 3, 400, 500, 60, 70, 8, 0, 0, 0, 123_456_780_000L);
            return List.of(
                    new StatsRow("app", total, avg),
                    new StatsRow("pgbouncer", StatCounters.ZERO, StatCounters.ZERO));
        }

        @Override
        public List<ConnectionRow> clients() {
            showCalls++;
            return List.of(
                    new ConnectionRow(
                            "alice",
                            "app",
                            "none",
                            "active",
                            "127.0.0.1",
                            40000,
                            "127.0.0.1",
                            6432,
                            Instant.parse("2025-01-02T03:04:05Z"),
                            null,
                            1_000_001,
                            false,
                            "c1",
                            "s1",
                            0,
                            "",
                            "psql",
                            0,
                            7,
                            ""));
        }

        @Override
        public List<ConnectionRow> servers() {
            showCalls++;
            return List.of();
        }

        @Override
        public List<DatabaseRow> databases() {
            showCalls++;
            return List.of(
                    new DatabaseRow(
                            "app",
                            "10.0.0.1",
                            5432,
                            "app",
                            null,
                            20,
                            0,
                            5,
                            3600,
                            null,
                            null,
                            0,
                            2,
                            0,
                            4,
                            true,
                            false));
        }

        @Override
        public List<UserRow> users() {
            showCalls++;
            return List.of(new UserRow("alice", 10, null, null, 0, 2, 0, 3));
        }

        @Override
        public Lists lists() {
            showCalls++;
            return new Lists(2, 3, 4, 0, 5, 1, 0, 6);
        }

        @Override
        public List<ConfigRow> config() {
            showCalls++;
            return List.of(
                    new ConfigRow("max_client_conn", "100", "100", true),
                    new ConfigRow("listen_port", "6432", "6432", false));
        }

        @Override
        public State state() {
            showCalls++;
            return state;
        }

        @Override
        public String version() {
            showCalls++;
            return AdminView.versionString("0.1.0");
        }

        @Override
        public List<PeerRow> peers() {
            showCalls++;
            return List.of(
                    new PeerRow(1, "10.0.0.1", 5432, "pgrelay-a", "etcd", true, 0),
                    new PeerRow(2, "10.0.0.2", 5432, "pgrelay-b", "etcd", false, 3));
        }

        @Override
        public List<TopologyRow> topology() {
            showCalls++;
            return List.of(
                    new TopologyRow(
                            "node1",
                            "10.0.0.1",
                            5432,
                            "primary",
                            "running",
                            null,
                            false,
                            true,
                            "etcd",
                            true,
                            null));
        }
    }

    /** Records calls; answers with the future in {@link #answers} for the verb, else done. */
    static final class FakeControl implements AdminControl {

        final List<String> calls = new ArrayList<>();
        final Map<String, CompletableFuture<String>> answers = new LinkedHashMap<>();

        private CompletableFuture<String> answer(String call) {
            calls.add(call);
            String verb = call.split(" ")[0];
            CompletableFuture<String> f = answers.remove(verb);
            return f != null ? f : AdminControl.done();
        }

        @Override
        public CompletableFuture<String> pause(String database) {
            return answer("PAUSE " + database);
        }

        @Override
        public CompletableFuture<String> resume(String database) {
            return answer("RESUME " + database);
        }

        @Override
        public CompletableFuture<String> reconnect(String database) {
            return answer("RECONNECT " + database);
        }

        @Override
        public CompletableFuture<String> kill(String database) {
            return answer("KILL " + database);
        }

        @Override
        public CompletableFuture<String> killClient(long clientId) {
            return answer("KILL_CLIENT " + clientId);
        }

        @Override
        public CompletableFuture<String> disable(String database) {
            return answer("DISABLE " + database);
        }

        @Override
        public CompletableFuture<String> enable(String database) {
            return answer("ENABLE " + database);
        }

        @Override
        public CompletableFuture<String> reload() {
            return answer("RELOAD");
        }

        @Override
        public CompletableFuture<String> shutdown(ShutdownMode mode) {
            return answer("SHUTDOWN " + mode);
        }

        @Override
        public CompletableFuture<String> waitClose(String database) {
            return answer("WAIT_CLOSE " + database);
        }

        @Override
        public CompletableFuture<String> set(String key, String value) {
            return answer("SET " + key + "=" + value);
        }
    }
}
