package io.pgrelay.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.util.List;

/**
 * Frames the byte stream into whole protocol messages without parsing them. Messages are emitted as
 * retained slices of the cumulation buffer (type byte, length and body, exactly as received) so
 * they can be relayed as is: one slice per message, or in the {@code ...Runs} variants one slice
 * per read holding every message complete at that moment. The handler that receives a slice owns
 * it.
 *
 * <p>Two phases: the first messages of a frontend connection have no type byte (StartupMessage,
 * SSLRequest, GSSENCRequest, CancelRequest); the handler calls {@link #typedPhase()} once the
 * startup packet is accepted. ByteToMessageDecoder hands each frame on before it decodes the next
 * one, so the switch takes effect for the very next message.
 *
 * <p>Lengths are checked before any body byte is buffered, so a bogus 2 GB length fails at once
 * instead of making the proxy wait for (or allocate) 2 GB. After a failure the decoder discards
 * everything else the peer sends: the handler reports the error and closes.
 *
 * <p>A large message (over {@link MessageMemory#LARGE_MESSAGE}) reserves its size in the shared
 * {@link MessageMemory}, if one is given, when its header arrives, and gives it back when it is
 * handed on; one that does not fit fails with SQLSTATE 53200. Its buffer is then grown once to the
 * announced size: the default cumulator grows in 4 MiB steps past 4 MiB, copying the message each
 * time and holding it twice during each copy.
 */
public final class FrameDecoder extends ByteToMessageDecoder {

    /** PostgreSQL's own limit for startup packets (MAX_STARTUP_PACKET_LENGTH). */
    public static final int MAX_STARTUP_PACKET_LENGTH = 10_000;

    private final int maxMessageLength;
    private final boolean runs;
    private final MessageMemory memory;
    private boolean startupPhase;
    private boolean failed;

    /** Whole size (type byte included) of the large message being received, 0 when none. */
    private int receiving;

    /** Bytes this decoder holds reserved in {@link #memory} for that message. */
    private long reserved;

    private FrameDecoder(
            boolean startupPhase, int maxMessageLength, boolean runs, MessageMemory memory) {
        this.startupPhase = startupPhase;
        this.maxMessageLength = maxMessageLength;
        this.runs = runs;
        this.memory = memory;
        setCumulator(this::cumulate);
    }

    /** For connections from clients: untyped startup packets first. */
    public static FrameDecoder frontend(int maxMessageLength) {
        return new FrameDecoder(true, maxMessageLength, false, null);
    }

    /**
     * For connections from clients, framing runs once typed (see {@link #backendRuns}); the startup
     * packets before that still come one at a time.
     */
    public static FrameDecoder frontendRuns(int maxMessageLength) {
        return new FrameDecoder(true, maxMessageLength, true, null);
    }

    /** {@link #frontendRuns(int)}, with large messages accounted in {@code memory}. */
    public static FrameDecoder frontendRuns(int maxMessageLength, MessageMemory memory) {
        return new FrameDecoder(true, maxMessageLength, true, memory);
    }

    /** For connections to servers: typed messages only. */
    public static FrameDecoder backend(int maxMessageLength) {
        return new FrameDecoder(false, maxMessageLength, false, null);
    }

    /**
     * For connections to servers, framing runs: every message that is complete when bytes arrive
     * goes out in one slice, the run (several whole messages back to back, never a partial one). A
     * result set read in one go is then one object through the pipeline and one write to the client
     * instead of one per DataRow; the handler walks the headers itself.
     */
    public static FrameDecoder backendRuns(int maxMessageLength) {
        return new FrameDecoder(false, maxMessageLength, true, null);
    }

    public void typedPhase() {
        startupPhase = false;
    }

    /**
     * Bytes received behind the message being handled: after an SSLRequest there must be none, or a
     * man in the middle could have put them there in plain text to be taken as sent under TLS
     * (CVE-2021-23214).
     */
    public int pendingBytes() {
        return actualReadableBytes();
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
            failed = true;
            throw ProtocolException.unanswered(
                    "invalid length of startup packet: "
                            + length
                            + " (expected: 8.."
                            + MAX_STARTUP_PACKET_LENGTH
                            + ")");
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
            throw fail(
                    "invalid message length: "
                            + length
                            + " for message type '"
                            + printable(in.getByte(start))
                            + "' (expected: >= 4)");
        }
        if (length > maxMessageLength) {
            throw fail(
                    "message of type '"
                            + printable(in.getByte(start))
                            + "' too long: length "
                            + Integer.toUnsignedString(length)
                            + " (expected: <= "
                            + maxMessageLength
                            + ", max_message_size)");
        }
        // Not "readable < length + 1": with no limit (Integer.MAX_VALUE, as for server
        // connections) a length of Integer.MAX_VALUE would overflow that sum.
        if (in.readableBytes() - 1 < length) {
            if (length >= MessageMemory.LARGE_MESSAGE && receiving == 0) {
                startLargeMessage(in.getByte(start), length + 1L);
            }
            return;
        }
        endLargeMessage();
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

    private void startLargeMessage(byte type, long size) {
        if (memory != null && !memory.tryReserve(size)) {
            failed = true;
            throw new ProtocolException(
                    SqlState.OUT_OF_MEMORY,
                    "out of memory: a message of type '"
                            + printable(type)
                            + "' and "
                            + size
                            + " bytes cannot be received now: large messages in"
                            + " flight already take "
                            + memory.used()
                            + " of "
                            + memory.max()
                            + " bytes (limits.max_buffered_message_bytes)");
        }
        reserved = memory == null ? 0 : size;
        receiving = (int) Math.min(size, Integer.MAX_VALUE); // no buffer holds more anyway
    }

    private void endLargeMessage() {
        receiving = 0;
        if (reserved > 0) {
            memory.release(reserved);
            reserved = 0;
        }
    }

    /**
     * Netty's merge, except that a large message's buffer is grown once to the announced size (the
     * message starts at the cumulation's reader index: an incomplete one is never consumed).
     */
    private ByteBuf cumulate(ByteBufAllocator alloc, ByteBuf cumulation, ByteBuf in) {
        int whole = receiving;
        if (whole == 0 || in.readableBytes() <= cumulation.writableBytes()) {
            return MERGE_CUMULATOR.cumulate(alloc, cumulation, in);
        }
        ByteBuf grown;
        try {
            grown = alloc.buffer(Math.max(whole, cumulation.readableBytes() + in.readableBytes()));
        } catch (RuntimeException | OutOfMemoryError e) {
            in.release(); // ours to release; the cumulation stays the decoder's
            throw e;
        }
        grown.writeBytes(cumulation).writeBytes(in);
        cumulation.release();
        in.release();
        return grown;
    }

    @Override
    protected void handlerRemoved0(ChannelHandlerContext ctx) {
        endLargeMessage();
    }

    private ProtocolException fail(String message) {
        failed = true;
        return new ProtocolException(SqlState.PROTOCOL_VIOLATION, message);
    }

    static String printable(byte type) {
        return type >= 32 && type < 127
                ? String.valueOf((char) type)
                : String.format("\\x%02x", type & 0xff);
    }
}
