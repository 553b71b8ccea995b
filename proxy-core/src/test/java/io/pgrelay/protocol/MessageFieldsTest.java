package io.pgrelay.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Fields read in place from messages inside the runs the framing decoder hands on (so at non-zero
 * indexes), whatever pieces the bytes arrived in; the buffer's indexes are left alone.
 */
class MessageFieldsTest {

    private static final int[] PIECES = {1, 2, 5, 13, 1 << 20};

    private static ByteBuf message(char type, Consumer<ByteBuf> body) {
        ByteBuf buf = Unpooled.buffer().writeByte(type).writeInt(0);
        body.accept(buf);
        return buf.setInt(1, buf.writerIndex() - 1);
    }

    private static ByteBuf concat(ByteBuf... parts) {
        ByteBuf all = Unpooled.buffer();
        for (ByteBuf p : parts) {
            all.writeBytes(p);
            p.release();
        }
        return all;
    }

    /** The runs {@code decoder} makes of {@code wire} fed in pieces; every message visited. */
    private static List<Integer> visit(
            FrameDecoder decoder, byte[] wire, int piece, MessageVisitor visitor) {
        EmbeddedChannel ch = new EmbeddedChannel(decoder);
        List<Integer> indexes = new ArrayList<>();
        ByteBuf in = Unpooled.wrappedBuffer(wire);
        try {
            while (in.isReadable()) {
                ch.writeInbound(in.readRetainedSlice(Math.min(piece, in.readableBytes())));
                ByteBuf run;
                while ((run = ch.readInbound()) != null) {
                    try {
                        int reader = run.readerIndex();
                        int writer = run.writerIndex();
                        for (int i = reader; i < writer; i = Messages.end(run, i)) {
                            indexes.add(i - reader);
                            visitor.visit(run.getByte(i), run, i);
                        }
                        assertEquals(reader, run.readerIndex(), "reader index untouched");
                        assertEquals(writer, run.writerIndex(), "writer index untouched");
                    } finally {
                        run.release();
                    }
                }
            }
        } finally {
            in.release();
            assertFalse(ch.finishAndReleaseAll());
        }
        return indexes;
    }

    interface MessageVisitor {
        void visit(byte type, ByteBuf buf, int index);
    }

    private static byte[] bytes(ByteBuf buf) {
        byte[] b = new byte[buf.readableBytes()];
        buf.readBytes(b);
        buf.release();
        return b;
    }

    @Test
    void backendFieldsInsideRuns() {
        byte[] wire =
                bytes(
                        concat(
                                message('R', b -> b.writeInt(Messages.AUTH_OK)),
                                Messages.parameterStatus(
                                        Unpooled.buffer().alloc(), "DateStyle", "ISO, MDY"),
                                Messages.parameterStatus(
                                        Unpooled.buffer().alloc(), "application_name", ""),
                                Messages.backendKeyData(
                                        Unpooled.buffer().alloc(), 31337, 0x89abcdef),
                                message('C', b -> CStrings.write(b, "DEALLOCATE ALL")),
                                message('C', b -> CStrings.write(b, "SELECT 1")),
                                message('Z', b -> b.writeByte('T'))));
        for (int piece : PIECES) {
            List<String> seen = new ArrayList<>();
            List<Integer> indexes =
                    visit(
                            FrameDecoder.backendRuns(Integer.MAX_VALUE),
                            wire,
                            piece,
                            (type, buf, index) -> {
                                switch (type) {
                                    case Messages.AUTHENTICATION ->
                                            seen.add(
                                                    "R"
                                                            + MessageFields.authenticationCode(
                                                                    buf, index));
                                    case Messages.PARAMETER_STATUS ->
                                            seen.add(
                                                    MessageFields.parameterName(buf, index)
                                                            + "="
                                                            + MessageFields.parameterValue(
                                                                    buf, index));
                                    case Messages.BACKEND_KEY_DATA ->
                                            seen.add(
                                                    "K"
                                                            + MessageFields.processId(buf, index)
                                                            + "/"
                                                            + Integer.toHexString(
                                                                    MessageFields.secretKey(
                                                                            buf, index)));
                                    case Messages.COMMAND_COMPLETE ->
                                            seen.add(
                                                    "C"
                                                            + MessageFields.commandTagIs(
                                                                    buf, index, "DEALLOCATE ALL")
                                                            + MessageFields.commandTagIs(
                                                                    buf, index, "DEALLOCATE")
                                                            + MessageFields.commandTagIs(
                                                                    buf, index, "SELECT 1"));
                                    case Messages.READY_FOR_QUERY ->
                                            seen.add(
                                                    "Z"
                                                            + (char)
                                                                    MessageFields.transactionStatus(
                                                                            buf, index));
                                    default -> seen.add("?");
                                }
                            });
            assertEquals(
                    List.of(
                            "R0",
                            "DateStyle=ISO, MDY",
                            "application_name=",
                            "K31337/89abcdef",
                            "Ctruefalsefalse",
                            "Cfalsefalsetrue",
                            "ZT"),
                    seen,
                    "pieces of " + piece);
            if (piece > wire.length) {
                assertEquals(7, indexes.size());
                assertEquals(0, indexes.get(0));
                for (int i = 1; i < indexes.size(); i++) {
                    assertTrue(indexes.get(i) > indexes.get(i - 1), "one run, read in place");
                }
            }
        }
    }

    @Test
    void frontendNamesInsideRuns() {
        ByteBuf bind =
                message(
                        'B',
                        b -> {
                            CStrings.write(b, "portal");
                            CStrings.write(b, "stmt");
                            b.writeShort(1).writeShort(1).writeShort(0).writeShort(0);
                        });
        byte[] wire =
                bytes(
                        concat(
                                message('Q', b -> CStrings.write(b, "select 1")),
                                message(
                                        'P',
                                        b -> {
                                            CStrings.write(b, "s_ü");
                                            CStrings.write(b, "select $1");
                                            b.writeShort(1).writeInt(23);
                                        }),
                                bind,
                                message(
                                        'D',
                                        b -> {
                                            b.writeByte('P');
                                            CStrings.write(b, "portal");
                                        }),
                                message(
                                        'C',
                                        b -> {
                                            b.writeByte('S');
                                            CStrings.write(b, "");
                                        }),
                                message('S', b -> {})));
        for (int piece : PIECES) {
            FrameDecoder decoder = FrameDecoder.frontendRuns(1 << 20);
            decoder.typedPhase();
            List<String> seen = new ArrayList<>();
            visit(
                    decoder,
                    wire,
                    piece,
                    (type, buf, index) -> {
                        assertEquals(null, MessageChecks.malformation(buf, index));
                        switch (type) {
                            case Messages.PARSE -> {
                                int q = MessageFields.parseQueryStart(buf, index);
                                seen.add(
                                        "P "
                                                + MessageFields.parseStatementName(buf, index)
                                                + " "
                                                + buf.toString(
                                                        q,
                                                        9,
                                                        java.nio.charset.StandardCharsets.UTF_8));
                                assertEquals(0, buf.getByte(q + 9));
                                assertEquals(1, buf.getShort(q + 10));
                            }
                            case Messages.BIND -> {
                                int start = MessageFields.bindStatementNameStart(buf, index);
                                assertEquals(index + 5 + "portal".length() + 1, start);
                                int params = MessageFields.bindParametersStart(buf, index);
                                assertEquals(start + "stmt".length() + 1, params);
                                assertEquals(Messages.end(buf, index) - 8, params);
                                seen.add("B " + MessageFields.bindStatementName(buf, index));
                            }
                            case Messages.DESCRIBE, Messages.CLOSE ->
                                    seen.add(
                                            (char) type
                                                    + " "
                                                    + (char) MessageFields.target(buf, index)
                                                    + " ["
                                                    + MessageFields.targetName(buf, index)
                                                    + "]");
                            default -> seen.add(String.valueOf((char) type));
                        }
                    });
            assertEquals(
                    List.of("Q", "P s_ü select $1", "B stmt", "D P [portal]", "C S []", "S"),
                    seen,
                    "pieces of " + piece);
        }
    }

    @Test
    void readerIndexOfTheBufferIsNotAssumedZero() {
        ByteBuf buf = Unpooled.buffer().writeBytes(new byte[] {9, 9, 9});
        buf.writeByte('S').writeInt(4 + "TimeZone".length() + 1 + "UTC".length() + 1);
        CStrings.write(buf, "TimeZone");
        CStrings.write(buf, "UTC");
        buf.readerIndex(3);
        try {
            assertEquals("TimeZone", MessageFields.parameterName(buf, 3));
            assertEquals("UTC", MessageFields.parameterValue(buf, 3));
            assertEquals(3, buf.readerIndex());
        } finally {
            buf.release();
        }
    }

    @Test
    void unterminatedNameThrowsWithinTheMessage() {
        // The name's terminator would be found in the next message: it must not be.
        ByteBuf run =
                concat(
                        message('P', b -> b.writeBytes("abc".getBytes())),
                        message('S', b -> {}),
                        message('Q', b -> CStrings.write(b, "x")));
        try {
            assertTrue(MessageChecks.malformation(run, 0) != null);
            ProtocolException e =
                    assertThrows(
                            ProtocolException.class,
                            () -> MessageFields.parseStatementName(run, 0));
            assertEquals("invalid string in message: missing terminator", e.getMessage());
            assertEquals(SqlState.PROTOCOL_VIOLATION, e.sqlState());
            assertEquals("x", MessageFields.parseStatementName(run, 13));
        } finally {
            run.release();
        }
    }

    @Test
    void dataRowColumnsWithNulls() {
        ByteBuf row =
                message(
                        'D',
                        b -> {
                            b.writeShort(3);
                            b.writeInt(3).writeBytes("bob".getBytes());
                            b.writeInt(-1);
                            b.writeInt(0);
                        });
        ByteBuf run = concat(message('Z', b -> b.writeByte('I')), row);
        try {
            assertEquals(java.util.Arrays.asList("bob", null, ""), MessageFields.columns(run, 6));
        } finally {
            run.release();
        }
    }

    @Test
    void extendedQueryIsParseBindExecuteSyncWithTheParameterApart() {
        ByteBuf run =
                Messages.extendedQuery(
                        Unpooled.buffer().alloc(),
                        "SELECT usename, passwd FROM pg_shadow WHERE usename=$1",
                        java.util.Arrays.asList("o'brien; --", null));
        try {
            List<Character> types = new ArrayList<>();
            for (int i = 0; i < run.writerIndex(); i = Messages.end(run, i)) {
                assertEquals(null, MessageChecks.malformation(run, i), "well formed");
                types.add((char) run.getByte(i));
            }
            assertEquals(List.of('P', 'B', 'E', 'S'), types);
            assertEquals("", MessageFields.parseStatementName(run, 0));
            int bind = Messages.end(run, 0);
            assertEquals("", MessageFields.bindStatementName(run, bind));
            ByteBuf params = run.slice(MessageFields.bindParametersStart(run, bind), 64);
            assertEquals(0, params.readShort(), "parameter formats: all text");
            assertEquals(2, params.readShort());
            int length = params.readInt();
            assertEquals(
                    "o'brien; --",
                    params.readCharSequence(length, java.nio.charset.StandardCharsets.UTF_8));
            assertEquals(-1, params.readInt(), "NULL");
            assertEquals(0, params.readShort(), "result formats: all text");
        } finally {
            run.release();
        }
    }

    @Test
    void typeAndEnd() {
        ByteBuf run = concat(message('Z', b -> b.writeByte('I')), message('X', b -> {}));
        try {
            assertEquals(6, Messages.end(run, 0));
            assertEquals(11, Messages.end(run, 6));
            assertEquals('Z', Messages.type(run));
            assertEquals('X', Messages.type(run.slice(6, 5)));
        } finally {
            run.release();
        }
    }
}
