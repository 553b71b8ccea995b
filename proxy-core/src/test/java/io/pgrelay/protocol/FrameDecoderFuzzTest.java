package io.pgrelay.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import io.pgrelay.testkit.TrackingAllocator;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;

/**
 * FrameDecoder against arbitrary bytes in fragments the fuzzer chooses. Every input is checked
 * against a reference framing of the whole byte stream: the decoder must emit exactly the complete
 * messages before the first bad length (no byte lost, reordered or held back), fail with a
 * ProtocolException exactly when there is a bad length, never throw anything else, and release
 * every buffer.
 */
class FrameDecoderFuzzTest {

    /** Client side: startup packets, then typed messages once the handler says so. */
    @FuzzTest
    void frontend(FuzzedDataProvider data) {
        run(data, true);
    }

    /** Server side: typed messages only. */
    @FuzzTest
    void backend(FuzzedDataProvider data) {
        run(data, false);
    }

    private static void run(FuzzedDataProvider data, boolean frontend) {
        boolean runs = data.consumeBoolean();
        // pgrelay frames server bytes with no limit (Integer.MAX_VALUE); clients get
        // max_message_size.
        int max = data.consumeBoolean() ? Integer.MAX_VALUE : data.consumeInt(4, 4096);
        FrameDecoder decoder =
                frontend
                        ? (runs ? FrameDecoder.frontendRuns(max) : FrameDecoder.frontend(max))
                        : (runs ? FrameDecoder.backendRuns(max) : FrameDecoder.backend(max));
        TrackingAllocator alloc = new TrackingAllocator();
        Collector collector = new Collector(decoder, frontend, runs, max);
        EmbeddedChannel ch = new EmbeddedChannel();
        ch.config().setAllocator(alloc);
        ch.pipeline().addLast(decoder, collector);

        ByteArrayOutputStream wire = new ByteArrayOutputStream();
        boolean failed = false;
        while (data.remainingBytes() > 0 && !collector.closed) {
            byte[] chunk = data.consumeBytes(data.consumeInt(1, 256));
            if (chunk.length == 0) {
                break;
            }
            wire.writeBytes(chunk);
            failed |= write(ch, alloc.buffer(chunk.length).writeBytes(chunk));
        }
        try {
            assertFalse(ch.finish(), "the collector passes nothing on");
        } catch (DecoderException e) {
            failed |= isProtocolViolation(e);
        }

        Reference expected = Reference.frame(wire.toByteArray(), frontend, max);
        assertEquals(
                expected.violation, failed, "ProtocolException iff the stream has a bad length");
        assertArrayEquals(
                expected.complete,
                collector.emitted.toByteArray(),
                "emitted bytes must be exactly the complete messages before any bad length");
        alloc.assertAllReleased();
    }

    /** Writes one fragment; true if the decoder reported a protocol violation. */
    private static boolean write(EmbeddedChannel ch, ByteBuf fragment) {
        try {
            ch.writeInbound(fragment);
            return false;
        } catch (DecoderException e) {
            return isProtocolViolation(e);
        }
    }

    private static boolean isProtocolViolation(DecoderException e) {
        if (!(e.getCause() instanceof ProtocolException)) {
            throw new AssertionError("FrameDecoder may only fail with a ProtocolException", e);
        }
        return true;
    }

    /**
     * Stands in for ClientSession / ServerConnection: checks each emitted slice is whole messages,
     * switches the decoder to the typed phase after a protocol 3 StartupMessage, and stops reading
     * after anything that makes ClientSession close (CancelRequest, other protocol versions, a bad
     * SSLRequest).
     */
    private static final class Collector extends ChannelInboundHandlerAdapter {

        final FrameDecoder decoder;
        final boolean runs;
        final int max;
        boolean startup;
        boolean closed;
        final ByteArrayOutputStream emitted = new ByteArrayOutputStream();

        Collector(FrameDecoder decoder, boolean frontend, boolean runs, int max) {
            this.decoder = decoder;
            this.startup = frontend;
            this.runs = runs;
            this.max = max;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf m = (ByteBuf) msg;
            try {
                int start = m.readerIndex();
                int length = m.readableBytes();
                if (startup) {
                    assertEquals(m.getInt(start), length, "startup packet slice = its length word");
                    int next = Reference.afterStartupPacket(StartupMessage.code(m), length);
                    if (next == Reference.TYPED) {
                        startup = false;
                        decoder.typedPhase();
                    } else if (next == Reference.CLOSE) {
                        closed = true;
                    }
                } else if (runs) {
                    assertTrue(length >= 5, "a run holds at least one message");
                    for (int i = start; i < start + length; ) {
                        assertTrue(start + length - i >= 5, "run ends in a partial header");
                        long declared = m.getInt(i + 1);
                        assertTrue(
                                declared >= 4 && declared <= max,
                                "bad length in a run: " + declared);
                        assertTrue(
                                i + 1 + declared <= start + length,
                                "run ends in a partial message");
                        i += 1 + (int) declared;
                    }
                } else {
                    assertTrue(length >= 5, "message shorter than its header");
                    assertEquals(length - 1, m.getInt(start + 1), "slice = type byte + length");
                }
                emitted.writeBytes(ByteBufUtil.getBytes(m));
            } finally {
                m.release();
            }
        }
    }

    /** Frames a whole byte stream the slow, obvious way. */
    private static final class Reference {

        static final int STARTUP = 0;
        static final int TYPED = 1;
        static final int CLOSE = 2;

        final byte[] complete;
        final boolean violation;

        private Reference(byte[] complete, boolean violation) {
            this.complete = complete;
            this.violation = violation;
        }

        /** What ClientSession does after an untyped packet: stay, go typed, or close. */
        static int afterStartupPacket(int code, int length) {
            if (code == StartupMessage.SSL_REQUEST_CODE
                    || code == StartupMessage.GSSENC_REQUEST_CODE) {
                return length == 8 ? STARTUP : CLOSE;
            }
            return code >>> 16 == 3 ? TYPED : CLOSE;
        }

        static Reference frame(byte[] wire, boolean frontend, int max) {
            boolean startup = frontend;
            int i = 0;
            while (true) {
                int header = startup ? 4 : 5;
                if (wire.length - i < header) {
                    break;
                }
                long length = startup ? readInt(wire, i) : readInt(wire, i + 1);
                long total;
                if (startup) {
                    if (length < 8 || length > FrameDecoder.MAX_STARTUP_PACKET_LENGTH) {
                        return new Reference(Arrays.copyOf(wire, i), true);
                    }
                    total = length;
                } else {
                    if (length < 4 || length > max) {
                        return new Reference(Arrays.copyOf(wire, i), true);
                    }
                    total = length + 1;
                }
                if (wire.length - i < total) {
                    break;
                }
                if (startup && afterStartupPacket(readInt(wire, i + 4), (int) length) == TYPED) {
                    startup = false;
                }
                i += (int) total;
            }
            return new Reference(Arrays.copyOf(wire, i), false);
        }

        private static int readInt(byte[] b, int i) {
            return (b[i] & 0xff) << 24
                    | (b[i + 1] & 0xff) << 16
                    | (b[i + 2] & 0xff) << 8
                    | (b[i + 3] & 0xff);
        }
    }
}
