package io.pgrelay.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.util.List;

/**
 * Frames the byte stream into whole protocol messages without parsing them. Messages are
 * emitted as retained slices of the cumulation buffer (type byte, length and body, exactly as
 * received) so they can be relayed as is: one slice per message, or in the {@code ...Runs}
 * variants one slice per read holding every message complete at that moment. The handler that
 * receives a slice owns it.
 *
 * <p>Two phases: the first messages of a frontend connection have no type byte (StartupMessage,
 * SSLRequest, GSSENCRequest, CancelRequest); the handler calls {@link #typedPhase()} once the
 * startup packet is accepted. ByteToMessageDecoder hands each frame on before it decodes the
 * next one, so the switch takes effect for the very next message.
 *
 * <p>Lengths are checked before any body byte is buffered, so a bogus 2 GB length fails at
 * once instead of making the proxy wait for (or allocate) 2 GB. After a failure the decoder
 * discards everything else the peer sends: the handler reports the error and closes.
 */
public final class FrameDecoder extends ByteToMessageDecoder {

    /** PostgreSQL's own limit for startup packets (MAX_STARTUP_PACKET_LENGTH). */
    public static final int MAX_STARTUP_PACKET_LENGTH = 10_000;

    private final int maxMessageLength;
    private final boolean runs;
    private boolean startupPhase;
    private boolean failed;

    private FrameDecoder(boolean startupPhase, int maxMessageLength, boolean runs) {
        this.startupPhase = startupPhase;
        this.maxMessageLength = maxMessageLength;
        this.runs = runs;
    }

    /** For connections from clients: untyped startup packets first. */
    public static FrameDecoder frontend(int maxMessageLength) {
        return new FrameDecoder(true, maxMessageLength, false);
    }

    /**
     * For connections from clients, framing runs once typed (see {@link #backendRuns}); the
     * startup packets before that still come one at a time.
     */
    public static FrameDecoder frontendRuns(int maxMessageLength) {
        return new FrameDecoder(true, maxMessageLength, true);
    }

    /** For connections to servers: typed messages only. */
    public static FrameDecoder backend(int maxMessageLength) {
        return new FrameDecoder(false, maxMessageLength, false);
    }

    /**
     * For connections to servers, framing runs: every message that is complete when bytes
     * arrive goes out in one slice, the run (several whole messages back to back, never a
     * partial one). A result set read in one go is then one object through the pipeline and one
     * write to the client instead of one per DataRow; the handler walks the headers itself.
     */
    public static FrameDecoder backendRuns(int maxMessageLength) {
        return new FrameDecoder(false, maxMessageLength, true);
    }

    public void typedPhase() {
        startupPhase = false;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (failed) {
            in.skipBytes(in.readableBytes());
            return;
        }
        if (startupPhase) {
            decodeStartupPacket(in, out);
        } else {
            decodeMessage(in, out);
        }
    }

    private void decodeStartupPacket(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < 4) {
            return;
        }
        int length = in.getInt(in.readerIndex());
        if (length < 8 || length > MAX_STARTUP_PACKET_LENGTH) {
            throw fail("invalid length of startup packet: " + length
                    + " (expected: 8.." + MAX_STARTUP_PACKET_LENGTH + ")");
        }
        if (in.readableBytes() < length) {
            return;
        }
        out.add(in.readRetainedSlice(length));
    }

    private void decodeMessage(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < 5) {
            return;
        }
        int start = in.readerIndex();
        int length = in.getInt(start + 1);
        if (length < 4) {
            throw fail("invalid message length: " + length + " for message type '"
                    + printable(in.getByte(start)) + "' (expected: >= 4)");
        }
        if (length > maxMessageLength) {
            throw fail("message of type '" + printable(in.getByte(start)) + "' too long: length "
                    + Integer.toUnsignedString(length) + " (expected: <= " + maxMessageLength
                    + ", max_message_size)");
        }
        // Not "readable < length + 1": with no limit (Integer.MAX_VALUE, as for server
        // connections) a length of Integer.MAX_VALUE would overflow that sum.
        if (in.readableBytes() - 1 < length) {
            return;
        }
        if (!runs) {
            out.add(in.readRetainedSlice(length + 1));
            return;
        }
        int end = start + length + 1;
        int limit = in.writerIndex();
        while (limit - end >= 5) {
            int next = in.getInt(end + 1);
            if (next < 4 || next > maxMessageLength) {
                break; // emit the good ones; the next decode call reports this one
            }
            if (limit - end - 1 < next) { // next + 1 could overflow, as above
                break;
            }
            end += next + 1;
        }
        out.add(in.readRetainedSlice(end - start));
    }

    private ProtocolException fail(String message) {
        failed = true;
        return new ProtocolException(SqlState.PROTOCOL_VIOLATION, message);
    }

    static String printable(byte type) {
        return type >= 32 && type < 127 ? String.valueOf((char) type) : String.format("\\x%02x", type & 0xff);
    }
}
