package io.pgrelay.session;

import static io.pgrelay.session.Wire.bind;
import static io.pgrelay.session.Wire.bindComplete;
import static io.pgrelay.session.Wire.close;
import static io.pgrelay.session.Wire.closeComplete;
import static io.pgrelay.session.Wire.commandComplete;
import static io.pgrelay.session.Wire.concat;
import static io.pgrelay.session.Wire.dataRow;
import static io.pgrelay.session.Wire.describe;
import static io.pgrelay.session.Wire.error;
import static io.pgrelay.session.Wire.execute;
import static io.pgrelay.session.Wire.parse;
import static io.pgrelay.session.Wire.parseComplete;
import static io.pgrelay.session.Wire.readyForQuery;
import static io.pgrelay.session.Wire.rowDescription;
import static io.pgrelay.session.Wire.sync;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.MessageChecks;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Transaction mode's renaming of named prepared statements, against fake server connections that
 * record what they are sent; client and server bytes go through the real framing decoders in every
 * piece size, and each message is handled as ClientSession handles it.
 */
class StatementMapperTest {

    // ------------------------------------------------------------------ fixtures

    /**
     * The settings the bundled pgrelay.conf gives, with {@code overrides} (paths under pgrelay).
     */
    static ProxyConfig config(Map<String, Object> overrides) {
        Map<String, Object> prefixed = new HashMap<>();
        overrides.forEach((k, v) -> prefixed.put("pgrelay." + k, v));
        Config c = ConfigFactory.parseMap(prefixed).withFallback(ProxyConfig.defaults()).resolve();
        return ProxyConfig.from(c.getConfig("pgrelay"));
    }

    /** A server connection: its prepared statements and everything written to it, decoded. */
    static final class FakeServer implements StatementMapper.Server, StatementMapper.Counts {
        final ServerStatements statements = new ServerStatements();
        final List<byte[]> written = new ArrayList<>();
        int clientParses;
        int serverParses;
        int binds;

        @Override
        public ServerStatements statements() {
            return statements;
        }

        @Override
        public void write(ByteBuf message) {
            written.add(Wire.drain(message));
        }

        @Override
        public StatementMapper.Counts counts() {
            return this;
        }

        @Override
        public void clientParse() {
            clientParses++;
        }

        @Override
        public void serverParse() {
            serverParses++;
        }

        @Override
        public void bind() {
            binds++;
        }

        /** What was written, one short description per message, and forgets it. */
        List<String> take() {
            List<String> out = new ArrayList<>();
            for (byte[] m : written) {
                out.add(describeMessage(m));
            }
            written.clear();
            return out;
        }
    }

    static String describeMessage(byte[] bytes) {
        ByteBuf m = Unpooled.wrappedBuffer(bytes);
        char type = (char) m.getByte(0);
        return switch (type) {
            case 'P' ->
                    "P "
                            + MessageFields.parseStatementName(m, 0)
                            + " "
                            + cString(m, MessageFields.parseQueryStart(m, 0));
            case 'B' ->
                    "B "
                            + cString(m, MessageFields.HEADER)
                            + " "
                            + MessageFields.bindStatementName(m, 0);
            case 'D', 'C' ->
                    type
                            + " "
                            + (char) MessageFields.target(m, 0)
                            + " "
                            + MessageFields.targetName(m, 0);
            default -> String.valueOf(type);
        };
    }

    private static String cString(ByteBuf m, int from) {
        int end = m.indexOf(from, m.writerIndex(), (byte) 0);
        return m.toString(from, end - from, StandardCharsets.UTF_8);
    }

    /** One client session's statement handling, as ClientSession drives it. */
    static final class Client {
        final List<String> errors = new ArrayList<>();
        final StatementMapper mapper;
        final ExpectedReplies replies;
        final int piece;
        FakeServer server;

        /** What the client received: message types, an ErrorResponse as "E" + SQLSTATE. */
        final List<String> received = new ArrayList<>();

        Client(World world, FakeServer server) {
            this.piece = world.piece;
            this.mapper =
                    new StatementMapper(
                            world.cache, world.config::get, UnpooledByteBufAllocator.DEFAULT);
            this.replies = new ExpectedReplies(mapper);
            mapper.replyTo(replies);
            use(server);
        }

        void use(FakeServer linked) {
            server = linked;
            mapper.use(linked);
        }

        /** Client messages, framed, then forwarded, mapped or dropped as ClientSession does. */
        void send(ByteBuf... messages) {
            Wire.forEach(
                    Wire.frontendRuns(concat(messages), piece),
                    (type, run, index) -> {
                        int length = Messages.end(run, index) - index;
                        if (replies.skipping() && type != Messages.SYNC) {
                            return;
                        }
                        if (StatementMapper.needsMapping(type, run, index)
                                && MessageChecks.malformation(run, index) == null) {
                            mapper.map(run.retainedSlice(index, length));
                            emit();
                            return;
                        }
                        replies.forwarded(type, run, index);
                        server.write(run.retainedSlice(index, length));
                    });
        }

        /** Server messages, framed, then relayed or swallowed as ClientSession does. */
        void reply(ByteBuf... messages) {
            Wire.forEach(
                    Wire.backendRuns(concat(messages), piece),
                    (type, run, index) -> {
                        switch (type) {
                            case Messages.READY_FOR_QUERY -> {
                                replies.readyForQuery(MessageFields.transactionStatus(run, index));
                                received.add("Z");
                            }
                            case Messages.ERROR_RESPONSE -> {
                                // pgrelay's own failing request: its error replaces the server's.
                                ErrorResponse mine = replies.serverError();
                                if (mine != null) {
                                    errors.add(mine.sqlState());
                                }
                                ErrorResponse sent =
                                        mine != null
                                                ? mine
                                                : ErrorResponse.decode(
                                                        run.slice(
                                                                index,
                                                                Messages.end(run, index) - index));
                                received.add("E" + sent.sqlState());
                            }
                            default -> {
                                ExpectedReply done = replies.replied(type);
                                if (done == null || !done.isSwallowed()) {
                                    received.add(String.valueOf((char) type));
                                }
                            }
                        }
                        emit();
                    });
        }

        private void emit() {
            ExpectedReply reply;
            while ((reply = replies.nextSynthesized()) != null) {
                mapper.emitted(reply);
                ByteBuf m = reply.message();
                received.add(String.valueOf((char) Messages.type(m)));
                m.release();
            }
        }

        List<String> take() {
            List<String> out = List.copyOf(received);
            received.clear();
            return out;
        }
    }

    /** The shared statement cache, the settings in force and the piece size, for one run. */
    static final class World {
        final int piece;
        final PreparedStatements cache;
        final AtomicReference<ProxyConfig> config;

        World(int piece, ProxyConfig config, long cacheBytes) {
            this.piece = piece;
            this.cache = new PreparedStatements(cacheBytes);
            this.config = new AtomicReference<>(config);
        }
    }

    private static final ProxyConfig DEFAULTS = config(Map.of());

    private static void forEachPiece(ProxyConfig config, Consumer<World> test) {
        forEachPiece(config, Long.MAX_VALUE, test);
    }

    private static void forEachPiece(ProxyConfig config, long cacheBytes, Consumer<World> test) {
        for (int piece : Wire.PIECES) {
            test.accept(new World(piece, config, cacheBytes));
        }
    }

    // ------------------------------------------------------------------ which messages are mapped

    @Test
    void onlyNamedStatementsNeedMapping() {
        List<ByteBuf> messages = new ArrayList<>();
        List<Boolean> expected = new ArrayList<>();
        Consumer<Object[]> add =
                c -> {
                    messages.add((ByteBuf) c[0]);
                    expected.add((Boolean) c[1]);
                };
        add.accept(new Object[] {parse("s1", "select 1"), true});
        add.accept(new Object[] {parse("", "select 1"), false});
        add.accept(new Object[] {bind("p", "s1"), true});
        add.accept(new Object[] {bind("p", ""), false});
        add.accept(new Object[] {bind("", ""), false});
        add.accept(new Object[] {describe('S', "s1"), true});
        add.accept(new Object[] {describe('S', ""), false});
        add.accept(new Object[] {describe('P', "p"), false});
        add.accept(new Object[] {close('S', "s1"), true});
        add.accept(new Object[] {close('P', "p"), false});
        add.accept(new Object[] {execute("p"), false});
        // Too short to say: taken out of the fast path, to be rejected there.
        add.accept(new Object[] {Wire.message('B', b -> b.writeByte('p')), true});
        add.accept(new Object[] {Wire.message('D', b -> {}), true});
        List<Boolean> actual = new ArrayList<>();
        Wire.forEach(
                Wire.frontendRuns(concat(messages.toArray(ByteBuf[]::new)), 5),
                (type, run, index) -> actual.add(StatementMapper.needsMapping(type, run, index)));
        assertEquals(expected, actual);
    }

    // ------------------------------------------------------------------ Parse

    @Test
    void firstParseOfANameGoesToTheServerRenamed() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select $1::int", 23), sync());
                    List<byte[]> written = List.copyOf(server.written);
                    assertEquals(List.of("P PGRELAY_1 select $1::int", "S"), server.take());
                    assertArrayEquals(
                            Wire.bytes(parse("PGRELAY_1", "select $1::int", 23)),
                            written.get(0),
                            "query text and parameter types unchanged");
                    a.reply(parseComplete(), readyForQuery('I'));
                    assertEquals(List.of("1", "Z"), a.take());
                    assertEquals(1, server.clientParses);
                    assertEquals(1, server.serverParses);
                    assertEquals(1, server.statements.size());
                    assertEquals(1, w.cache.size());
                    assertEquals(1, a.mapper.size());
                    assertTrue(a.replies.releasable());
                });
    }

    @Test
    void secondClientParsingTheSameTextOnTheSameServerGetsASynthesizedParseComplete() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select 1"), sync());
                    a.reply(parseComplete(), readyForQuery('I'));
                    server.take();

                    Client b = new Client(w, server);
                    b.send(parse("other", "select 1"));
                    assertEquals(List.of("1"), b.take(), "answered at once, nothing owed before");
                    b.send(sync());
                    assertEquals(List.of("S"), server.take(), "no Parse to the server");
                    b.reply(readyForQuery('I'));
                    assertEquals(List.of("Z"), b.take());
                    assertEquals(2, server.clientParses);
                    assertEquals(1, server.serverParses);
                    assertEquals(1, w.cache.size());
                    assertEquals(2, w.cache.rows().get(0).clientRefs());

                    // The same text on another server is prepared there, under the same name.
                    FakeServer other = new FakeServer();
                    Client c = new Client(w, other);
                    c.send(parse("x", "select 1"), sync());
                    assertEquals(List.of("P PGRELAY_1 select 1", "S"), other.take());
                    // Different parameter types make a different statement.
                    c.send(parse("y", "select 1", 25), sync());
                    assertEquals(List.of("P PGRELAY_2 select 1", "S"), other.take());
                });
    }

    @Test
    void parseCompleteSynthesizedBehindOutstandingRepliesWaitsForThem() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select 1"), sync());
                    a.reply(parseComplete(), readyForQuery('I'));
                    a.take();
                    Client b = new Client(w, server);
                    b.send(
                            parse("", "select 2"),
                            bind("", ""),
                            parse("mine", "select 1"),
                            execute(""),
                            sync());
                    assertEquals(List.of(), b.take(), "the unnamed Parse and Bind come first");
                    b.reply(parseComplete());
                    assertEquals(List.of("1"), b.take());
                    b.reply(bindComplete());
                    assertEquals(List.of("2", "1"), b.take());
                    b.reply(dataRow("2"), commandComplete("SELECT 1"), readyForQuery('I'));
                    assertEquals(List.of("D", "C", "Z"), b.take());
                });
    }

    @Test
    void duplicateParseIsRefusedWith42P05() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(
                            parse("S_1", "select 1"),
                            parse("S_1", "select 2"),
                            bind("", "S_1"),
                            execute(""),
                            sync());
                    // The duplicate fails on the server too (the batch and its transaction
                    // abort there, as they would directly), with pgrelay's error.
                    assertEquals(
                            List.of(
                                    "P PGRELAY_1 select 1",
                                    "P pgrelay: error pgrelay: not SQL",
                                    "B  PGRELAY_1",
                                    "E",
                                    "S"),
                            server.take());
                    a.reply(parseComplete(), error("26000", "missing"), readyForQuery('I'));
                    assertEquals(List.of("1", "E42P05", "Z"), a.take());
                    assertEquals(List.of("42P05"), a.errors);
                    assertEquals(1, a.mapper.size(), "the first statement stays");
                    assertEquals(1, w.cache.size(), "the refused text is not cached");
                    assertTrue(a.replies.releasable());
                });
    }

    // ------------------------------------------------------------------ Bind and Describe

    @Test
    void bindIsRenamedKeepingPortalAndParameters() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select $1::text, $2::text", 25, 25));
                    server.take();
                    a.send(bind("portal_7", "S_1", "héllo", null), execute("portal_7"), sync());
                    List<byte[]> written = List.copyOf(server.written);
                    assertEquals(List.of("B portal_7 PGRELAY_1", "E", "S"), server.take());
                    assertArrayEquals(
                            Wire.bytes(bind("portal_7", "PGRELAY_1", "héllo", null)),
                            written.get(0));
                    a.reply(
                            parseComplete(),
                            bindComplete(),
                            dataRow("héllo"),
                            commandComplete("SELECT 1"),
                            readyForQuery('I'));
                    assertEquals(List.of("1", "2", "D", "C", "Z"), a.take());
                    assertEquals(1, server.binds);
                    assertTrue(a.replies.releasable());
                });
    }

    @Test
    void bindOnAServerWithoutTheStatementPreparesItFirstAndSwallowsTheParseComplete() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer first = new FakeServer();
                    Client a = new Client(w, first);
                    a.send(parse("S_1", "select 1"), sync());
                    a.reply(parseComplete(), readyForQuery('I'));
                    a.take();

                    FakeServer second = new FakeServer();
                    a.use(second);
                    a.send(bind("", "S_1"), execute(""), sync());
                    assertEquals(
                            List.of("P PGRELAY_1 select 1", "B  PGRELAY_1", "E", "S"),
                            second.take());
                    a.reply(
                            parseComplete(),
                            bindComplete(),
                            dataRow("1"),
                            commandComplete("SELECT 1"),
                            readyForQuery('I'));
                    assertEquals(List.of("2", "D", "C", "Z"), a.take());
                    assertEquals(1, second.statements.size());
                    assertEquals(1, second.serverParses);
                    assertEquals(0, second.clientParses);

                    // Prepared there now: the next Bind goes alone.
                    a.send(bind("", "S_1"), execute(""), sync());
                    assertEquals(List.of("B  PGRELAY_1", "E", "S"), second.take());
                });
    }

    @Test
    void bindOrDescribeOfAnUnknownNameFailsWith26000AndSkipsToSync() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(bind("", "nope"), execute(""), sync());
                    assertEquals(
                            List.of("P pgrelay: error pgrelay: not SQL", "E", "S"), server.take());
                    assertEquals(List.of(), a.take(), "the server answers first");
                    a.reply(error("26000", "missing"), readyForQuery('I'));
                    assertEquals(List.of("E26000", "Z"), a.take());

                    a.send(describe('S', "nope"), sync());
                    assertEquals(List.of("P pgrelay: error pgrelay: not SQL", "S"), server.take());
                    a.reply(error("26000", "missing"), readyForQuery('I'));
                    assertEquals(List.of("E26000", "Z"), a.take());
                    assertEquals(List.of("26000", "26000"), a.errors);
                    assertEquals(0, server.binds);
                    assertTrue(a.replies.releasable());
                });
    }

    @Test
    void describeIsRenamed() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select 1"), describe('S', "S_1"), sync());
                    assertEquals(
                            List.of("P PGRELAY_1 select 1", "D S PGRELAY_1", "S"), server.take());
                    a.reply(
                            parseComplete(),
                            Wire.message('t', b -> b.writeShort(0)),
                            rowDescription("c"),
                            readyForQuery('I'));
                    assertEquals(List.of("1", "t", "T", "Z"), a.take());
                });
    }

    // ------------------------------------------------------------------ Close

    @Test
    void closeIsAnsweredHereAndTheSharedStatementStays() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    Client b = new Client(w, server);
                    a.send(parse("S_1", "select 1"), sync());
                    a.reply(parseComplete(), readyForQuery('I'));
                    b.send(parse("S_1", "select 1"), sync());
                    b.reply(readyForQuery('I'));
                    server.take();
                    a.take();
                    b.take();

                    a.send(close('S', "S_1"), sync());
                    assertEquals(List.of("3"), a.take());
                    assertEquals(List.of("S"), server.take(), "no Close to the server");
                    a.reply(readyForQuery('I'));
                    assertEquals(List.of("Z"), a.take());
                    assertEquals(0, a.mapper.size());
                    assertEquals(1, w.cache.size(), "b still uses it");
                    assertEquals(1, w.cache.rows().get(0).clientRefs());
                    assertEquals(1, server.statements.size(), "still prepared on the server");

                    b.send(bind("", "S_1"), execute(""), sync());
                    assertEquals(List.of("B  PGRELAY_1", "E", "S"), server.take());
                    b.reply(bindComplete(), commandComplete("SELECT 0"));
                    b.reply(readyForQuery('I'));
                    b.take();

                    b.send(close('S', "S_1"), close('S', "never_prepared"), sync());
                    assertEquals(
                            List.of("3", "3"), b.take(), "Close of a missing name is no error");
                    assertEquals(0, w.cache.size());
                    assertEquals(0, w.cache.bytes());
                    assertEquals(1, server.statements.size(), "the server's LRU evicts it later");

                    // After the Close, the name is free again.
                    a.send(bind("", "S_1"), sync());
                    a.reply(error("26000", "missing"), readyForQuery('I'));
                    assertEquals(List.of("E26000", "Z"), a.take());
                });
    }

    @Test
    void closeOfAPortalIsRelayed() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(close('P', "p1"), sync());
                    assertEquals(List.of("C P p1", "S"), server.take());
                    a.reply(closeComplete(), readyForQuery('I'));
                    assertEquals(List.of("3", "Z"), a.take());
                });
    }

    // ------------------------------------------------------------------ eviction

    @Test
    void serverAtMaxPreparedStatementsClosesTheLeastRecentlyUsedFirst() {
        forEachPiece(
                config(Map.of("pool.max_prepared_statements", 2)),
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(
                            parse("S_1", "select 1"),
                            parse("S_2", "select 2"),
                            parse("S_3", "select 3"),
                            sync());
                    assertEquals(
                            List.of(
                                    "P PGRELAY_1 select 1",
                                    "P PGRELAY_2 select 2",
                                    "C S PGRELAY_1",
                                    "P PGRELAY_3 select 3",
                                    "S"),
                            server.take());
                    a.reply(
                            parseComplete(),
                            parseComplete(),
                            closeComplete(),
                            parseComplete(),
                            readyForQuery('I'));
                    assertEquals(
                            List.of("1", "1", "1", "Z"),
                            a.take(),
                            "the eviction's CloseComplete is swallowed");
                    assertEquals(2, server.statements.size());
                    assertTrue(a.replies.releasable());

                    // S_3 used last; S_1 is gone from the server: prepared again, S_2 evicted.
                    a.send(bind("", "S_3"), execute(""), bind("", "S_1"), execute(""), sync());
                    assertEquals(
                            List.of(
                                    "B  PGRELAY_3",
                                    "E",
                                    "C S PGRELAY_2",
                                    "P PGRELAY_1 select 1",
                                    "B  PGRELAY_1",
                                    "E",
                                    "S"),
                            server.take());
                    a.reply(
                            bindComplete(),
                            commandComplete("SELECT 1"),
                            closeComplete(),
                            parseComplete(),
                            bindComplete(),
                            commandComplete("SELECT 1"),
                            readyForQuery('I'));
                    assertEquals(List.of("2", "C", "2", "C", "Z"), a.take());
                    assertEquals(2, server.statements.size());
                    assertEquals(3, a.mapper.size(), "the client keeps all its names");
                });
    }

    @Test
    void maxPreparedStatementsIsReadLiveFromTheSettings() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(
                            parse("S_1", "select 1"),
                            parse("S_2", "select 2"),
                            parse("S_3", "select 3"));
                    assertEquals(3, server.statements.size());
                    server.take();
                    w.config.set(config(Map.of("pool.max_prepared_statements", 1)));
                    a.send(parse("S_4", "select 4"));
                    assertEquals(
                            List.of(
                                    "C S PGRELAY_1",
                                    "C S PGRELAY_2",
                                    "C S PGRELAY_3",
                                    "P PGRELAY_4 select 4"),
                            server.take());
                    assertEquals(1, server.statements.size());
                });
    }

    @Test
    void maxPreparedStatementsReloadedToZeroDoesNotBreakMappingSessions() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    w.config.set(config(Map.of("pool.max_prepared_statements", 0)));
                    assertDoesNotThrow(() -> a.send(parse("S_1", "select 1")));
                    assertTrue(
                            server.take().contains("P PGRELAY_1 select 1"),
                            "a later Bind needs it on the server");
                });
    }

    // ------------------------------------------------------------------ limits

    @Test
    void clientStatementCountLimitFailsWith53400() {
        forEachPiece(
                config(Map.of("limits.max_client_prepared_statements", 2)),
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(
                            parse("S_1", "select 1"),
                            parse("S_2", "select 2"),
                            parse("S_3", "select 3"),
                            bind("", "S_3"),
                            sync());
                    // S_3 is refused, and so is the Bind of it: the server fails the first
                    // and skips the second, so the client hears only the first error.
                    assertEquals(
                            List.of(
                                    "P PGRELAY_1 select 1",
                                    "P PGRELAY_2 select 2",
                                    "P pgrelay: error pgrelay: not SQL",
                                    "P pgrelay: error pgrelay: not SQL",
                                    "S"),
                            server.take());
                    a.reply(
                            parseComplete(),
                            parseComplete(),
                            error("26000", "missing"),
                            readyForQuery('I'));
                    assertEquals(List.of("1", "1", "E53400", "Z"), a.take());
                    assertEquals(List.of("53400"), a.errors);
                    assertEquals(2, a.mapper.size());
                    assertEquals(2, w.cache.size());

                    // After a Close there is room again.
                    a.send(close('S', "S_1"), parse("S_3", "select 3"), sync());
                    assertEquals(List.of("P PGRELAY_3 select 3", "S"), server.take());
                    assertEquals(2, a.mapper.size());
                });
    }

    @Test
    void clientStatementBytesLimitFailsWith53400() {
        forEachPiece(
                config(Map.of("limits.max_client_prepared_statement_bytes", "100B")),
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select " + "1".repeat(100)), sync());
                    assertEquals(List.of("P pgrelay: error pgrelay: not SQL", "S"), server.take());
                    assertEquals(0, a.mapper.size());
                    assertEquals(0, w.cache.size());
                    a.reply(error("26000", "missing"), readyForQuery('I'));
                    assertEquals(List.of("E53400", "Z"), a.take());
                    a.send(parse("S_1", "select 1"), sync());
                    assertEquals(List.of("P PGRELAY_1 select 1", "S"), server.take());
                });
    }

    @Test
    void fullSharedCacheFailsWith53400() {
        forEachPiece(
                DEFAULTS,
                20,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select 1"), parse("S_2", "select 222222222"), sync());
                    assertEquals(
                            List.of(
                                    "P PGRELAY_1 select 1",
                                    "P pgrelay: error pgrelay: not SQL",
                                    "S"),
                            server.take());
                    a.reply(parseComplete(), error("26000", "missing"), readyForQuery('I'));
                    List<String> received = a.take();
                    assertEquals(List.of("1", "E53400", "Z"), received);
                    assertEquals(1, w.cache.size());
                    // Existing entries are always shared.
                    Client b = new Client(w, server);
                    b.send(parse("mine", "select 1"));
                    assertEquals(List.of("1"), b.take());
                });
    }

    // ------------------------------------------------------------------ undo

    @Test
    void failedParseIsForgotten() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "selec 1"), bind("", "S_1"), execute(""), sync());
                    assertEquals(
                            List.of("P PGRELAY_1 selec 1", "B  PGRELAY_1", "E", "S"),
                            server.take());
                    a.reply(
                            error("42601", "syntax error at or near \"selec\""),
                            readyForQuery('I'));
                    assertEquals(List.of("E42601", "Z"), a.take());
                    assertEquals(0, a.mapper.size());
                    assertEquals(0, w.cache.size());
                    assertEquals(0, server.statements.size());

                    // The name is free: no 42P05, and the corrected text goes to the server.
                    a.send(parse("S_1", "select 1"), sync());
                    assertEquals(List.of("P PGRELAY_2 select 1", "S"), server.take());
                    a.reply(parseComplete(), readyForQuery('I'));
                    assertEquals(List.of("1", "Z"), a.take());
                    assertEquals(1, a.mapper.size());
                });
    }

    @Test
    void skippedSynthesizedParseCompleteForgetsTheName() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select 1"), sync());
                    a.reply(parseComplete(), readyForQuery('I'));
                    Client b = new Client(w, server);
                    b.send(parse("", "selec"), parse("mine", "select 1"), sync());
                    b.reply(error("42601", "syntax error"), readyForQuery('I'));
                    assertEquals(List.of("E42601", "Z"), b.take(), "no ParseComplete");
                    assertEquals(0, b.mapper.size());
                    assertEquals(1, w.cache.rows().get(0).clientRefs());
                    assertEquals(1, server.statements.size(), "a's statement stays prepared");
                });
    }

    @Test
    void skippedInjectedParseIsForgottenByTheServerSet() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer first = new FakeServer();
                    Client a = new Client(w, first);
                    a.send(parse("S_1", "select 1"), sync());
                    a.reply(parseComplete(), readyForQuery('I'));
                    FakeServer second = new FakeServer();
                    a.use(second);
                    a.send(parse("", "selec"), bind("", "S_1"), sync());
                    assertEquals(
                            List.of("P  selec", "P PGRELAY_1 select 1", "B  PGRELAY_1", "S"),
                            second.take());
                    a.reply(error("42601", "syntax error"), readyForQuery('I'));
                    assertEquals(0, second.statements.size(), "the server skipped our Parse");
                    a.send(bind("", "S_1"), sync());
                    assertEquals(
                            List.of("P PGRELAY_1 select 1", "B  PGRELAY_1", "S"), second.take());
                });
    }

    @Test
    void closeAndReparseSkippedAfterAnErrorKeepTheOldStatement() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select 1"), sync());
                    a.reply(parseComplete(), readyForQuery('I'));
                    server.take();
                    a.take();
                    a.send(parse("", "selec"), close('S', "S_1"), parse("S_1", "select 2"), sync());
                    a.reply(error("42601", "syntax error"), readyForQuery('I'));
                    assertEquals(List.of("E42601", "Z"), a.take());
                    assertEquals(1, a.mapper.size(), "PostgreSQL skipped the Close");
                    server.take();
                    a.send(bind("", "S_1"), execute(""), sync());
                    assertEquals(List.of("B  PGRELAY_1", "E", "S"), server.take());
                });
    }

    @Test
    void evictionCloseSkippedAfterAnErrorKeepsTheStatementKnownPrepared() {
        forEachPiece(
                config(Map.of("pool.max_prepared_statements", 1)),
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select 1"), sync());
                    a.reply(parseComplete(), readyForQuery('I'));
                    server.take();
                    a.take();
                    // S_2 evicts PGRELAY_1, but the server skips that Close after the error.
                    a.send(
                            parse("", "select 1/0"),
                            bind("", ""),
                            execute(""),
                            parse("S_2", "select 2"),
                            sync());
                    assertEquals(
                            List.of(
                                    "P  select 1/0",
                                    "B  ",
                                    "E",
                                    "C S PGRELAY_1",
                                    "P PGRELAY_2 select 2",
                                    "S"),
                            server.take());
                    a.reply(
                            parseComplete(),
                            bindComplete(),
                            error("22012", "division by zero"),
                            readyForQuery('I'));
                    assertEquals(List.of("1", "2", "E22012", "Z"), a.take());
                    // So a Bind of S_1 goes alone: a Parse of PGRELAY_1 would be 42P05 there.
                    a.send(bind("", "S_1"), execute(""), sync());
                    assertEquals(List.of("B  PGRELAY_1", "E", "S"), server.take());
                });
    }

    // ------------------------------------------------------------------ releasing

    @Test
    void releaseAllDropsEveryReference() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    Client b = new Client(w, server);
                    a.send(parse("S_1", "select 1"), parse("S_2", "select 2"), sync());
                    a.reply(parseComplete(), parseComplete(), readyForQuery('I'));
                    b.send(parse("x", "select 2"), parse("y", "select 3"), sync());
                    b.reply(parseComplete(), readyForQuery('I'));
                    assertEquals(3, w.cache.size());
                    a.mapper.releaseAll();
                    assertEquals(0, a.mapper.size());
                    assertEquals(2, w.cache.size(), "b's statements stay");
                    b.mapper.releaseAll();
                    assertEquals(0, w.cache.size());
                    assertEquals(0, w.cache.bytes());
                    assertEquals(3, server.statements.size(), "the server keeps what it has");
                });
    }

    @Test
    void forgetAllEmptiesTheServerToo() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select 1"), sync());
                    a.reply(parseComplete(), readyForQuery('I'));
                    server.take();
                    a.mapper.forgetAll();
                    assertEquals(0, a.mapper.size());
                    assertEquals(0, w.cache.size());
                    assertEquals(0, server.statements.size());
                    a.send(parse("S_1", "select 1"), sync());
                    assertEquals(List.of("P PGRELAY_2 select 1", "S"), server.take());
                });
    }

    @Test
    void serverLostUndoesWhatItWasSent() {
        forEachPiece(
                DEFAULTS,
                w -> {
                    FakeServer server = new FakeServer();
                    Client a = new Client(w, server);
                    a.send(parse("S_1", "select 1"), bind("", "S_1"), execute(""));
                    ExpectedReplies.Lost lost = a.replies.serverLost();
                    assertEquals(new ExpectedReplies.Lost(0, true, false), lost);
                    assertEquals(0, a.mapper.size(), "its Parse never completed");
                    assertEquals(0, w.cache.size());
                    assertEquals(0, server.statements.size());
                    assertFalse(a.replies.skipping());
                });
    }
}
