package io.pgrelay.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.pgrelay.protocol.CStrings;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.protocol.StartupMessage;
import io.pgrelay.session.StartupParser.CancelRequest;
import io.pgrelay.session.StartupParser.EncryptionRequest;
import io.pgrelay.session.StartupParser.Negotiation;
import io.pgrelay.session.StartupParser.Packet;
import io.pgrelay.session.StartupParser.Refused;
import io.pgrelay.session.StartupParser.Startup;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * The first packets of a connection, framed by the real frontend decoder (fed whole, in fragments
 * and byte by byte) and read by {@link StartupParser}, with the answers PostgreSQL's
 * ProcessStartupPacket gives.
 */
class StartupParserTest {

    private static final Set<String> NONE = Set.of();

    // ------------------------------------------------------------------ helpers

    /** An untyped packet: length word, then {@code code}, then {@code rest}. */
    private static ByteBuf packet(int code, int... rest) {
        ByteBuf buf = Unpooled.buffer().writeInt(8 + rest.length).writeInt(code);
        for (int b : rest) {
            buf.writeByte(b);
        }
        return buf;
    }

    /** A StartupMessage with protocol {@code 3.minor} and these parameters, in order. */
    private static ByteBuf startup(int minor, String... keyValues) {
        ByteBuf buf = Unpooled.buffer().writeInt(0).writeInt((3 << 16) | minor);
        for (String s : keyValues) {
            CStrings.write(buf, s);
        }
        buf.writeByte(0);
        return buf.setInt(0, buf.writerIndex());
    }

    private static ByteBuf wire(ByteBuf... packets) {
        return Wire.concat(packets);
    }

    /**
     * Frames {@code wire} (released) in every piece size and parses each packet, the state of
     * earlier answers carried as a session would: the same answers whatever the fragmentation.
     */
    private static List<Packet> parseAll(ByteBuf wire, Set<String> ignored) {
        byte[] bytes = Wire.drain(wire);
        List<Packet> first = null;
        for (int piece : Wire.PIECES) {
            List<Packet> parsed = new ArrayList<>();
            boolean[] answered = new boolean[2];
            for (ByteBuf p : Wire.startupPackets(Unpooled.wrappedBuffer(bytes), piece)) {
                try {
                    int before = p.readerIndex();
                    Packet result = StartupParser.parse(p, answered[0], answered[1], ignored);
                    assertEquals(before, p.readerIndex(), "the packet is read in place");
                    if (result instanceof EncryptionRequest e) {
                        answered[e.ssl() ? 0 : 1] = true;
                    }
                    parsed.add(result);
                } finally {
                    p.release();
                }
            }
            if (first == null) {
                first = parsed;
            } else {
                assertEquals(first, parsed, "pieces of " + piece + " bytes");
            }
        }
        return first;
    }

    private static Packet parseOne(ByteBuf packet) {
        return parseOne(packet, NONE);
    }

    private static Packet parseOne(ByteBuf packet, Set<String> ignored) {
        List<Packet> all = parseAll(packet, ignored);
        assertEquals(1, all.size(), all.toString());
        return all.get(0);
    }

    private static Startup accepted(ByteBuf packet) {
        return assertInstanceOf(Startup.class, parseOne(packet));
    }

    private static Refused refused(Packet p, String sqlState) {
        Refused r = assertInstanceOf(Refused.class, p);
        assertEquals(sqlState, r.error().sqlState(), r.error().toString());
        assertTrue(r.error().isFatal(), "a startup failure is FATAL");
        return r;
    }

    // ------------------------------------------------------------------ encryption requests

    @Test
    void sslRequestThenGssencRequestThenStartupOnOneConnection() {
        List<Packet> packets =
                parseAll(
                        wire(
                                packet(StartupMessage.SSL_REQUEST_CODE),
                                packet(StartupMessage.GSSENC_REQUEST_CODE),
                                startup(0, "user", "alice")),
                        NONE);
        assertEquals(3, packets.size());
        assertEquals(new EncryptionRequest(true), packets.get(0));
        assertEquals(new EncryptionRequest(false), packets.get(1));
        assertEquals("alice", assertInstanceOf(Startup.class, packets.get(2)).user());
    }

    @Test
    void secondSslRequestIsAnUnsupportedProtocolVersion() {
        List<Packet> packets =
                parseAll(
                        wire(
                                packet(StartupMessage.SSL_REQUEST_CODE),
                                packet(StartupMessage.SSL_REQUEST_CODE)),
                        NONE);
        assertEquals(new EncryptionRequest(true), packets.get(0));
        Refused r = refused(packets.get(1), SqlState.FEATURE_NOT_SUPPORTED);
        assertEquals(
                "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0",
                r.error().message());
        assertNull(r.negotiation());
    }

    @Test
    void secondGssencRequestIsAnUnsupportedProtocolVersion() {
        List<Packet> packets =
                parseAll(
                        wire(
                                packet(StartupMessage.GSSENC_REQUEST_CODE),
                                packet(StartupMessage.GSSENC_REQUEST_CODE)),
                        NONE);
        assertEquals(new EncryptionRequest(false), packets.get(0));
        Refused r = refused(packets.get(1), SqlState.FEATURE_NOT_SUPPORTED);
        // 80877104 = 1234 << 16 | 5680
        assertEquals(
                "unsupported frontend protocol 1234.5680: server supports 3.0 to 3.0",
                r.error().message());
    }

    @Test
    void sslRequestAfterGssencAnsweredIsStillAnswered() {
        List<Packet> packets =
                parseAll(
                        wire(
                                packet(StartupMessage.GSSENC_REQUEST_CODE),
                                packet(StartupMessage.SSL_REQUEST_CODE)),
                        NONE);
        assertEquals(List.of(new EncryptionRequest(false), new EncryptionRequest(true)), packets);
    }

    @Test
    void sslRequestOfWrongLengthIsAProtocolViolation() {
        Refused r =
                refused(
                        parseOne(packet(StartupMessage.SSL_REQUEST_CODE, 0, 0, 0, 0)),
                        SqlState.PROTOCOL_VIOLATION);
        assertEquals("invalid length of SSLRequest: 12", r.error().message());
        Refused g =
                refused(
                        parseOne(packet(StartupMessage.GSSENC_REQUEST_CODE, 0)),
                        SqlState.PROTOCOL_VIOLATION);
        assertEquals("invalid length of GSSENCRequest: 9", g.error().message());
    }

    // ------------------------------------------------------------------ cancel requests

    @Test
    void cancelRequestCarriesProcessIdAndSecretKey() {
        ByteBuf cancel = StartupMessage.encodeCancelRequest(Unpooled.buffer().alloc(), 4242, -7);
        assertEquals(new CancelRequest(true, 4242, -7), parseOne(cancel));
    }

    @Test
    void cancelRequestOfWrongLengthIsMalformed() {
        assertEquals(
                new CancelRequest(false, 0, 0),
                parseOne(packet(StartupMessage.CANCEL_REQUEST_CODE, 0, 0, 0, 1)));
        assertEquals(
                new CancelRequest(false, 0, 0),
                parseOne(
                        packet(
                                StartupMessage.CANCEL_REQUEST_CODE,
                                0,
                                0,
                                0,
                                1,
                                0,
                                0,
                                0,
                                2,
                                0,
                                0,
                                0,
                                3)));
    }

    // ------------------------------------------------------------------ protocol versions

    @Test
    void protocolTwoIsRefused() {
        Refused r = refused(parseOne(packet(2 << 16, 0)), SqlState.FEATURE_NOT_SUPPORTED);
        assertEquals(
                "unsupported frontend protocol 2.0: server supports 3.0 to 3.0",
                r.error().message());
        assertNull(r.negotiation());
    }

    @Test
    void protocolFourIsRefused() {
        refused(parseOne(packet(4 << 16, 0)), SqlState.FEATURE_NOT_SUPPORTED);
    }

    @Test
    void protocolThreeZeroNeedsNoNegotiation() {
        assertNull(accepted(startup(0, "user", "alice")).negotiation());
    }

    @Test
    void protocolThreeTwoIsNegotiatedDownToThreeZero() {
        Startup s = accepted(startup(2, "user", "alice"));
        assertEquals(new Negotiation(0, List.of()), s.negotiation());
        assertEquals("alice", s.user());
    }

    @Test
    void unknownProtocolOptionsAreNegotiatedAndNotRequested() {
        Startup s =
                accepted(
                        startup(
                                0,
                                "user",
                                "alice",
                                "_pq_.x",
                                "1",
                                "application_name",
                                "app",
                                "_pq_.compression",
                                "on"));
        assertEquals(new Negotiation(0, List.of("_pq_.x", "_pq_.compression")), s.negotiation());
        assertEquals(Map.of("application_name", "app"), s.requested());
        assertEquals("app", s.applicationName());
    }

    @Test
    void negotiationComesWithARefusal() {
        Refused r = refused(parseOne(startup(2, "_pq_.x", "1")), "28000");
        assertEquals(new Negotiation(0, List.of("_pq_.x")), r.negotiation());
    }

    // ------------------------------------------------------------------ user and database

    @Test
    void missingUserIsRefused() {
        Refused r =
                refused(
                        parseOne(startup(0, "database", "db")),
                        SqlState.INVALID_AUTHORIZATION_SPECIFICATION);
        assertEquals("no PostgreSQL user name specified in startup packet", r.error().message());
        refused(
                parseOne(startup(0, "user", "", "database", "db")),
                SqlState.INVALID_AUTHORIZATION_SPECIFICATION);
    }

    @Test
    void databaseDefaultsToTheUserName() {
        Startup s = accepted(startup(0, "user", "alice"));
        assertEquals("alice", s.database());
        assertEquals("alice", accepted(startup(0, "user", "alice", "database", "")).database());
        assertEquals("shop", accepted(startup(0, "database", "shop", "user", "bob")).database());
        assertEquals("", s.applicationName());
        assertEquals(Map.of(), s.requested());
    }

    @Test
    void consoleDatabaseNames() {
        assertTrue(accepted(startup(0, "user", "admin", "database", "pgbouncer")).isConsole());
        assertTrue(accepted(startup(0, "user", "admin", "database", "pgrelay")).isConsole());
        assertFalse(accepted(startup(0, "user", "admin", "database", "postgres")).isConsole());
        // A user named like the console, with no database: the database defaults to the user.
        assertTrue(accepted(startup(0, "user", "pgbouncer")).isConsole());
    }

    // ------------------------------------------------------------------ replication

    @Test
    void replicationConnectionsAreRefused() {
        for (String value : List.of("true", "on", "yes", "1", "database", "TRUE")) {
            Refused r =
                    refused(
                            parseOne(startup(0, "user", "alice", "replication", value)),
                            SqlState.FEATURE_NOT_SUPPORTED);
            assertTrue(r.error().message().contains("replication"), r.error().message());
        }
    }

    @Test
    void replicationFalseIsAnOrdinaryConnection() {
        for (String value : List.of("false", "off", "no", "0", "FALSE")) {
            Startup s = accepted(startup(0, "user", "alice", "replication", value));
            assertEquals(Map.of(), s.requested(), "replication is not a session parameter");
        }
    }

    // ------------------------------------------------------------------ parameters

    @Test
    void optionsAreSplitIntoCanonicallyNamedParameters() {
        Startup s =
                accepted(
                        startup(
                                0,
                                "user",
                                "alice",
                                "options",
                                "-c datestyle=Postgres,MDY -c search_path=x",
                                "TimeZone",
                                "UTC",
                                "client_encoding",
                                "UTF8"));
        Map<String, String> expected = new LinkedHashMap<>();
        expected.put("DateStyle", "Postgres,MDY");
        expected.put("search_path", "x");
        expected.put("TimeZone", "UTC");
        expected.put("client_encoding", "UTF8");
        assertEquals(expected, s.requested());
        assertEquals(List.copyOf(expected.keySet()), List.copyOf(s.requested().keySet()));
    }

    @Test
    void optionsWithEscapedSpaceAndLongForm() {
        Startup s =
                accepted(
                        startup(
                                0,
                                "user",
                                "alice",
                                "options",
                                "--application-name=a\\ b -cintervalstyle=iso_8601"));
        assertEquals(Map.of("application_name", "a b", "IntervalStyle", "iso_8601"), s.requested());
    }

    @Test
    void malformedOptionsAreAProtocolViolation() {
        refused(
                parseOne(startup(0, "user", "alice", "options", "-x foo")),
                SqlState.PROTOCOL_VIOLATION);
        refused(
                parseOne(startup(0, "user", "alice", "options", "-c noequals")),
                SqlState.PROTOCOL_VIOLATION);
    }

    @Test
    void invalidParameterNameIsAProtocolViolation() {
        Refused r =
                refused(
                        parseOne(startup(0, "user", "alice", "bad name;", "x")),
                        SqlState.PROTOCOL_VIOLATION);
        assertEquals("invalid startup parameter name: \"bad name;\"", r.error().message());
        refused(
                parseOne(startup(0, "user", "alice", "options", "-c 1abc=2")),
                SqlState.PROTOCOL_VIOLATION);
    }

    @Test
    void ignoredStartupParametersAreNotRequested() {
        Set<String> ignored = new TreeSet<>(String.CASE_INSENSITIVE_ORDER);
        ignored.add("extra_float_digits");
        ignored.add("Geqo");
        Startup s =
                assertInstanceOf(
                        Startup.class,
                        parseOne(
                                startup(
                                        0,
                                        "user",
                                        "alice",
                                        "extra_float_digits",
                                        "2",
                                        "geqo",
                                        "off",
                                        "search_path",
                                        "s"),
                                ignored));
        assertEquals(Map.of("search_path", "s"), s.requested());
        // Without the setting they are requested.
        assertEquals(
                Map.of("extra_float_digits", "2", "geqo", "off", "search_path", "s"),
                accepted(
                                startup(
                                        0,
                                        "user",
                                        "alice",
                                        "extra_float_digits",
                                        "2",
                                        "geqo",
                                        "off",
                                        "search_path",
                                        "s"))
                        .requested());
    }

    @Test
    void ignoringAnInvalidNameAcceptsThePacket() {
        Startup s =
                assertInstanceOf(
                        Startup.class,
                        parseOne(startup(0, "user", "alice", "bad name", "x"), Set.of("bad name")));
        assertEquals(Map.of(), s.requested());
    }

    @Test
    void packetWithoutTerminatorIsAProtocolViolation() {
        ByteBuf p = Unpooled.buffer().writeInt(0).writeInt(StartupMessage.PROTOCOL_3_0);
        CStrings.write(p, "user");
        CStrings.write(p, "alice");
        p.setInt(0, p.writerIndex());
        Refused r = refused(parseOne(p), SqlState.PROTOCOL_VIOLATION);
        assertEquals(
                "invalid startup packet layout: expected terminator as last byte",
                r.error().message());
    }

    // ------------------------------------------------------------------ found by these tests

    @Test
    void bytesAfterTheTerminatorAreAProtocolViolation() {
        ByteBuf p = startup(0, "user", "alice").writeBytes(new byte[] {'x', 0});
        p.setInt(0, p.writerIndex());
        refused(parseOne(p), SqlState.PROTOCOL_VIOLATION);
    }

    @Test
    void replicationIsReadAsPostgreSQLReadsABoolean() {
        // parse_bool: unique prefixes of true/false/yes/no, on/off (at least "of"), 1/0.
        for (String value : List.of("f", "fal", "FALSE", "n", "of", "off", "0")) {
            accepted(startup(0, "user", "alice", "replication", value));
        }
        for (String value : List.of("t", "yes", "on", "1", "database")) {
            refused(
                    parseOne(startup(0, "user", "alice", "replication", value)),
                    SqlState.FEATURE_NOT_SUPPORTED);
        }
        for (String value : List.of("o", "maybe", "")) {
            refused(
                    parseOne(startup(0, "user", "alice", "replication", value)),
                    SqlState.INVALID_PARAMETER_VALUE);
        }
    }
}
