package io.pgrelay.session;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.pgrelay.protocol.CStrings;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.protocol.Messages;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Protocol bytes for the session unit tests, framed by the real {@link FrameDecoder} in an {@link
 * EmbeddedChannel}: the wire is fed in pieces of a given size (1: byte by byte) and what comes out
 * (one message or a run of them per read) is walked message by message.
 */
final class Wire {

    /** Piece sizes the wire is fed in: byte by byte, odd fragments, all at once. */
    static final int[] PIECES = {1, 2, 3, 7, 1 << 20};

    private Wire() {}

    /** A message handed to the part under test: its type, the run holding it, where it starts. */
    interface Visitor {
        void message(byte type, ByteBuf run, int index);
    }

    // ------------------------------------------------------------------ framing

    /** Untyped startup packets (the frontend decoder before its typed phase), one per element. */
    static List<ByteBuf> startupPackets(ByteBuf wire, int piece) {
        return feed(new EmbeddedChannel(FrameDecoder.frontendRuns(1 << 20)), wire, piece);
    }

    /** Client messages: the frontend decoder switched to its typed phase; runs. */
    static List<ByteBuf> frontendRuns(ByteBuf wire, int piece) {
        FrameDecoder decoder = FrameDecoder.frontendRuns(1 << 20);
        decoder.typedPhase();
        return feed(new EmbeddedChannel(decoder), wire, piece);
    }

    /** Server messages: the backend decoder; runs. */
    static List<ByteBuf> backendRuns(ByteBuf wire, int piece) {
        return feed(new EmbeddedChannel(FrameDecoder.backendRuns(Integer.MAX_VALUE)), wire, piece);
    }

    /** Feeds {@code wire} (released) in pieces; returns everything decoded, caller releases. */
    private static List<ByteBuf> feed(EmbeddedChannel ch, ByteBuf wire, int piece) {
        List<ByteBuf> out = new ArrayList<>();
        try {
            while (wire.isReadable()) {
                ch.writeInbound(wire.readRetainedSlice(Math.min(piece, wire.readableBytes())));
                ByteBuf b;
                while ((b = ch.readInbound()) != null) {
                    out.add(b);
                }
            }
        } finally {
            wire.release();
            ch.finishAndReleaseAll();
        }
        return out;
    }

    /** Hands every message of every run to {@code visitor} in order, then releases the runs. */
    static int forEach(List<ByteBuf> runs, Visitor visitor) {
        int count = 0;
        try {
            for (ByteBuf run : runs) {
                for (int i = run.readerIndex(); i < run.writerIndex(); i = Messages.end(run, i)) {
                    visitor.message(run.getByte(i), run, i);
                    count++;
                }
            }
        } finally {
            runs.forEach(ByteBuf::release);
        }
        return count;
    }

    /** Types of the messages in {@code wire} as framed in pieces of {@code piece} bytes. */
    static String backendTypes(ByteBuf wire, int piece) {
        StringBuilder types = new StringBuilder();
        forEach(backendRuns(wire, piece), (type, run, index) -> types.append((char) type));
        return types.toString();
    }

    // ------------------------------------------------------------------ building messages

    static ByteBuf concat(ByteBuf... parts) {
        ByteBuf all = Unpooled.buffer();
        for (ByteBuf p : parts) {
            all.writeBytes(p);
            p.release();
        }
        return all;
    }

    static ByteBuf message(char type, Consumer<ByteBuf> body) {
        ByteBuf buf = Unpooled.buffer().writeByte(type).writeInt(0);
        body.accept(buf);
        return buf.setInt(1, buf.writerIndex() - 1);
    }

    static ByteBuf empty(char type) {
        return message(type, b -> {});
    }

    static ByteBuf parse(String name, String sql, int... oids) {
        return message(
                'P',
                b -> {
                    CStrings.write(b, name);
                    CStrings.write(b, sql);
                    b.writeShort(oids.length);
                    for (int oid : oids) {
                        b.writeInt(oid);
                    }
                });
    }

    /** Bind with text parameters, every parameter and result in text format. */
    static ByteBuf bind(String portal, String statement, String... params) {
        return message('B', b -> bindBody(b, portal, statement, params));
    }

    static void bindBody(ByteBuf b, String portal, String statement, String... params) {
        CStrings.write(b, portal);
        CStrings.write(b, statement);
        b.writeShort(1).writeShort(0); // one format code: text
        b.writeShort(params.length);
        for (String p : params) {
            if (p == null) {
                b.writeInt(-1);
            } else {
                byte[] v = p.getBytes(StandardCharsets.UTF_8);
                b.writeInt(v.length).writeBytes(v);
            }
        }
        b.writeShort(1).writeShort(1); // one result format code: binary
    }

    static ByteBuf describe(char target, String name) {
        return message(
                'D',
                b -> {
                    b.writeByte(target);
                    CStrings.write(b, name);
                });
    }

    static ByteBuf close(char target, String name) {
        return message(
                'C',
                b -> {
                    b.writeByte(target);
                    CStrings.write(b, name);
                });
    }

    static ByteBuf execute(String portal) {
        return message(
                'E',
                b -> {
                    CStrings.write(b, portal);
                    b.writeInt(0);
                });
    }

    static ByteBuf sync() {
        return empty('S');
    }

    static ByteBuf flush() {
        return empty('H');
    }

    static ByteBuf query(String sql) {
        return message('Q', b -> CStrings.write(b, sql));
    }

    static ByteBuf copyData(String data) {
        return message('d', b -> b.writeBytes(data.getBytes(StandardCharsets.UTF_8)));
    }

    // Backend messages.

    static ByteBuf parseComplete() {
        return empty('1');
    }

    static ByteBuf bindComplete() {
        return empty('2');
    }

    static ByteBuf closeComplete() {
        return empty('3');
    }

    static ByteBuf noData() {
        return empty('n');
    }

    static ByteBuf rowDescription(String column) {
        return message(
                'T',
                b -> {
                    b.writeShort(1);
                    CStrings.write(b, column);
                    b.writeInt(0).writeShort(0).writeInt(23).writeShort(4).writeInt(-1);
                    b.writeShort(0);
                });
    }

    static ByteBuf dataRow(String value) {
        return message(
                'D',
                b -> {
                    byte[] v = value.getBytes(StandardCharsets.UTF_8);
                    b.writeShort(1).writeInt(v.length).writeBytes(v);
                });
    }

    static ByteBuf commandComplete(String tag) {
        return message('C', b -> CStrings.write(b, tag));
    }

    static ByteBuf readyForQuery(char status) {
        return message('Z', b -> b.writeByte(status));
    }

    static ByteBuf error(String sqlState, String text) {
        return ErrorResponse.error(sqlState, text).encode(Unpooled.buffer().alloc());
    }

    static ByteBuf notice(String text) {
        return message(
                'N',
                b -> {
                    b.writeByte('S');
                    CStrings.write(b, "NOTICE");
                    b.writeByte('M');
                    CStrings.write(b, text);
                    b.writeByte(0);
                });
    }

    static ByteBuf copyInResponse() {
        return message('G', b -> b.writeByte(0).writeShort(1).writeShort(0));
    }

    static ByteBuf parameterStatus(String name, String value) {
        return message(
                'S',
                b -> {
                    CStrings.write(b, name);
                    CStrings.write(b, value);
                });
    }

    /** The bytes of {@code buf}'s readable part, then releases it. */
    static byte[] drain(ByteBuf buf) {
        try {
            byte[] bytes = new byte[buf.readableBytes()];
            buf.getBytes(buf.readerIndex(), bytes);
            return bytes;
        } finally {
            buf.release();
        }
    }

    /** The bytes of a message built here (released). */
    static byte[] bytes(ByteBuf message) {
        return drain(message);
    }

    static void assertType(char expected, ByteBuf message) {
        assertEquals(expected, (char) Messages.type(message));
    }
}
