package io.pgrelay.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import java.util.Map;
import org.junit.jupiter.api.Test;

class FrameDecoderTest {

    private static ByteBuf bytes(int... b) {
        ByteBuf buf = Unpooled.buffer(b.length);
        for (int x : b) {
            buf.writeByte(x);
        }
        return buf;
    }

    @Test
    void framesTypedMessagesFedOneByteAtATime() {
        EmbeddedChannel ch = new EmbeddedChannel(FrameDecoder.backend(1024));
        ByteBuf wire = Unpooled.buffer();
        wire.writeByte('Z').writeInt(5).writeByte('I');
        wire.writeByte('C').writeInt(11).writeBytes("SELECT 1\0".getBytes());
        while (wire.isReadable()) {
            ch.writeInbound(wire.readRetainedSlice(1));
        }
        wire.release();
        ByteBuf z = ch.readInbound();
        assertEquals(6, z.readableBytes());
        assertEquals('I', MessageFields.transactionStatus(z, z.readerIndex()));
        ByteBuf c = ch.readInbound();
        assertEquals('C', Messages.type(c));
        assertEquals(12, c.readableBytes());
        assertNull(ch.readInbound());
        z.release();
        c.release();
        assertFalse(ch.finish());
    }

    @Test
    void runsHoldEveryCompleteMessageAndNoPartialOne() {
        EmbeddedChannel ch = new EmbeddedChannel(FrameDecoder.backendRuns(1024));
        ByteBuf wire = Unpooled.buffer();
        wire.writeByte('D').writeInt(6).writeShort(0);
        wire.writeByte('C').writeInt(13).writeBytes("SELECT 1\0".getBytes());
        wire.writeByte('Z').writeInt(5); // status byte still missing
        ch.writeInbound(wire);
        ByteBuf run = ch.readInbound();
        assertEquals(7 + 14, run.readableBytes());
        assertEquals('D', run.getByte(run.readerIndex()));
        assertEquals('C', run.getByte(run.readerIndex() + 7));
        assertNull(ch.readInbound());
        run.release();
        ch.writeInbound(bytes('I'));
        ByteBuf z = ch.readInbound();
        assertEquals(6, z.readableBytes());
        assertEquals('I', MessageFields.transactionStatus(z, z.readerIndex()));
        z.release();
        assertFalse(ch.finish());
    }

    @Test
    void runStopsBeforeABadLengthWhichThenFails() {
        EmbeddedChannel ch = new EmbeddedChannel(FrameDecoder.backendRuns(1024));
        ByteBuf wire = Unpooled.buffer();
        wire.writeByte('Z').writeInt(5).writeByte('I');
        wire.writeByte('D').writeInt(2);
        assertThrows(DecoderException.class, () -> ch.writeInbound(wire));
        ByteBuf z = ch.readInbound();
        assertEquals(6, z.readableBytes());
        z.release();
        assertNull(ch.readInbound());
        ch.finishAndReleaseAll();
    }

    @Test
    void startupPhaseThenTypedPhase() {
        FrameDecoder decoder = FrameDecoder.frontend(1024);
        EmbeddedChannel ch = new EmbeddedChannel(decoder);
        ByteBuf startup = StartupMessage.encode(ch.alloc(), Map.of("user", "app"));
        ch.writeInbound(startup);
        ByteBuf packet = ch.readInbound();
        assertEquals(StartupMessage.PROTOCOL_3_0, StartupMessage.code(packet));
        assertEquals(Map.of("user", "app"), StartupMessage.parameters(packet));
        packet.release();
        decoder.typedPhase();
        ch.writeInbound(bytes('X', 0, 0, 0, 4));
        ByteBuf x = ch.readInbound();
        assertEquals(Messages.TERMINATE, Messages.type(x));
        x.release();
        assertFalse(ch.finish());
    }

    @Test
    void oversizedLengthFailsBeforeBufferingTheBody() {
        EmbeddedChannel ch = new EmbeddedChannel(FrameDecoder.backend(1024));
        DecoderException e =
                assertThrows(
                        DecoderException.class,
                        () -> ch.writeInbound(bytes('Q', 0x7f, 0xff, 0xff, 0xff, 's')));
        ProtocolException pe = (ProtocolException) e.getCause();
        assertEquals(SqlState.PROTOCOL_VIOLATION, pe.sqlState());
        assertTrue(
                pe.getMessage().contains("length 2147483647 (expected: <= 1024"), pe.getMessage());
        // After a failure everything else is discarded, and nothing leaks.
        ch.writeInbound(bytes('Z', 0, 0, 0, 5, 'I'));
        assertNull(ch.readInbound());
        assertFalse(ch.finish());
    }

    @Test
    void lengthOfIntegerMaxValueWithoutLimitWaitsForTheBody() {
        // Server connections frame with no limit; length + 1 used to overflow (found by
        // FrameDecoderFuzzTest).
        for (FrameDecoder decoder :
                new FrameDecoder[] {
                    FrameDecoder.backend(Integer.MAX_VALUE),
                    FrameDecoder.backendRuns(Integer.MAX_VALUE)
                }) {
            EmbeddedChannel ch = new EmbeddedChannel(decoder);
            ch.writeInbound(bytes('Z', 0, 0, 0, 5, 'I', 'D', 0x7f, 0xff, 0xff, 0xff, 0, 1));
            ByteBuf z = ch.readInbound();
            assertEquals(6, z.readableBytes());
            z.release();
            assertNull(ch.readInbound());
            assertFalse(ch.finishAndReleaseAll());
        }
    }

    @Test
    void lengthBelowFourIsRejected() {
        EmbeddedChannel ch = new EmbeddedChannel(FrameDecoder.backend(1024));
        assertThrows(DecoderException.class, () -> ch.writeInbound(bytes('P', 0, 0, 0, 3)));
        assertFalse(ch.finish());
    }

    @Test
    void startupPacketLimits() {
        EmbeddedChannel ch = new EmbeddedChannel(FrameDecoder.frontend(1024));
        assertThrows(
                DecoderException.class, () -> ch.writeInbound(bytes(0, 0, 0x27, 0x11, 0, 3, 0, 0)));
        assertFalse(ch.finish());
        EmbeddedChannel tiny = new EmbeddedChannel(FrameDecoder.frontend(1024));
        assertThrows(DecoderException.class, () -> tiny.writeInbound(bytes(0, 0, 0, 4)));
        assertFalse(tiny.finish());
    }

    @Test
    void errorResponseRoundTrip() {
        ErrorResponse e =
                ErrorResponse.fatal("57P01", "terminating connection due to administrator command");
        ByteBuf wire = e.encode(Unpooled.buffer().alloc());
        ErrorResponse back = ErrorResponse.decode(wire);
        wire.release();
        assertEquals("57P01", back.sqlState());
        assertTrue(back.isFatal());
        ErrorResponse downgraded = back.withSeverity("ERROR");
        assertFalse(downgraded.isFatal());
        assertEquals(back.message(), downgraded.message());
    }

    @Test
    void readyForQueryWireBytes() {
        ByteBuf z = Messages.readyForQueryIdle();
        assertEquals(Unpooled.wrappedBuffer(new byte[] {'Z', 0, 0, 0, 5, 'I'}), z);
        z.release();
    }

    private static ByteBuf queryHeader(int length, int bodyBytes) {
        ByteBuf b = Unpooled.buffer(5 + bodyBytes).writeByte('Q').writeInt(length);
        return b.writeZero(bodyBytes);
    }

    @Test
    void largeMessagesReserveSharedMemoryAndOneThatDoesNotFitFailsWith53200() {
        MessageMemory memory = new MessageMemory(300 * 1024);
        EmbeddedChannel a = new EmbeddedChannel(FrameDecoder.frontendRuns(1 << 20, memory));
        EmbeddedChannel b = new EmbeddedChannel(FrameDecoder.frontendRuns(1 << 20, memory));
        a.pipeline().get(FrameDecoder.class).typedPhase();
        b.pipeline().get(FrameDecoder.class).typedPhase();

        int size = 200 * 1024;
        a.writeInbound(queryHeader(size - 1, 1000));
        assertEquals(size, memory.used(), "reserved when the header arrives");
        DecoderException e =
                assertThrows(
                        DecoderException.class, () -> b.writeInbound(queryHeader(size - 1, 10)));
        ProtocolException cause = (ProtocolException) e.getCause();
        assertEquals(SqlState.OUT_OF_MEMORY, cause.sqlState());
        assertTrue(
                cause.getMessage().contains("limits.max_buffered_message_bytes"),
                cause.getMessage());
        assertEquals(size, memory.used(), "the refused message reserved nothing");

        // The rest arrives in pieces; the message comes out whole and its reservation is returned.
        int missing = size - 5 - 1000;
        while (missing > 0) {
            int piece = Math.min(missing, 7000);
            a.writeInbound(Unpooled.buffer(piece).writeZero(piece));
            missing -= piece;
        }
        ByteBuf message = a.readInbound();
        assertEquals(size, message.readableBytes());
        message.release();
        assertEquals(0, memory.used());

        // A connection closed half way through a large message gives its reservation back too.
        a.writeInbound(queryHeader(size - 1, 10));
        assertEquals(size, memory.used());
        a.finishAndReleaseAll();
        b.finishAndReleaseAll();
        assertEquals(0, memory.used());
    }

    @Test
    void smallMessagesAreNotAccounted() {
        MessageMemory memory = new MessageMemory(1);
        EmbeddedChannel ch = new EmbeddedChannel(FrameDecoder.frontendRuns(1 << 20, memory));
        ch.pipeline().get(FrameDecoder.class).typedPhase();
        ch.writeInbound(queryHeader(MessageMemory.LARGE_MESSAGE - 2, 100));
        assertNull(ch.readInbound());
        assertEquals(0, memory.used());
        assertFalse(ch.finishAndReleaseAll());
    }
}
