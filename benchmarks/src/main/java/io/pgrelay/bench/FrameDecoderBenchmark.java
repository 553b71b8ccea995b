package io.pgrelay.bench;

import io.netty.buffer.AdaptiveByteBufAllocator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.concurrent.FastThreadLocalThread;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.protocol.Messages;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Framing of server replies by {@link FrameDecoder}, in messages per second.
 *
 * <p>Every byte a PostgreSQL server sends through pgrelay passes this decoder: it finds message
 * boundaries on the 5-byte header and hands each message on as a retained slice, which the relay
 * inspects (type byte, e.g. ReadyForQuery's status) and forwards. Its per-message cost is therefore
 * a floor on the relay's per-message overhead, and it is the only place where the choice of {@link
 * ByteBufAllocator} touches every read (the read buffer, the cumulation, the slices).
 *
 * <p>Each invocation is one socket read as the event loop performs it: a direct buffer from the
 * channel's allocator filled with one complete reply, then {@code fireChannelRead} + {@code
 * fireChannelReadComplete} on the pipeline of an {@link EmbeddedChannel} holding the decoder and a
 * sink standing in for the relay handler: it walks the message headers of what it gets (one
 * message, or a run of them) into the {@link Blackhole} and releases it, so the read buffer goes
 * back to the allocator. {@code framing=frames} is one slice per message ({@code
 * FrameDecoder.backend}); {@code framing=runs} one slice per read with every complete message
 * ({@code FrameDecoder.backendRuns}, what {@code ServerConnection} installs).
 *
 * <ul>
 *   <li>{@link #simpleQueryReply}: the reply to {@code SELECT 1} (RowDescription, one DataRow,
 *       CommandComplete "SELECT 1", ReadyForQuery 'I'): 4 small messages, the typical OLTP round
 *       trip where fixed per-read and per-message costs dominate.
 *   <li>{@link #extendedQueryReply}: the reply to Parse/Bind/Describe/Execute/Sync of a 5-column,
 *       50-row SELECT (ParseComplete, BindComplete, RowDescription, 50 DataRows, CommandComplete
 *       "SELECT 50", ReadyForQuery): 55 messages, about 5.8 KB in one read.
 * </ul>
 *
 * <p>{@code allocator}: {@code pooled} = {@link PooledByteBufAllocator#DEFAULT} (Netty 4.1's
 * default), {@code adaptive} = a new {@link AdaptiveByteBufAllocator} (Netty 4.2's default).
 * Netty's leak detector stays at its default (SIMPLE, sampled) level. The benchmark runs on a
 * {@link FastThreadLocalThread} (see {@link EventLoopThreadExecutor}): on a plain thread Netty 4.2
 * gives neither allocator a thread cache, which would measure a path pgrelay's event loops never
 * take.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
// Event-loop-like worker threads, so both allocators use their per-thread caches as on pgrelay's
// loops.
// (-jvmArgsPrepend on the command line would replace this; -jvmArgs/-jvmArgsAppend do not.)
@Fork(
        value = 2,
        jvmArgsPrepend = {
            "-Djmh.executor=CUSTOM",
            "-Djmh.executor.class=io.pgrelay.bench.EventLoopThreadExecutor"
        })
@Threads(1)
@State(Scope.Thread)
public class FrameDecoderBenchmark {

    static final int SIMPLE_MESSAGES = 4;
    static final int EXTENDED_ROWS = 50;
    static final int EXTENDED_MESSAGES = EXTENDED_ROWS + 5;

    @Param({"pooled", "adaptive"})
    public String allocator;

    /**
     * {@code frames}: one slice per message ({@code FrameDecoder.backend}); {@code runs}: one slice
     * per read holding every complete message, walked by the handler ({@code
     * FrameDecoder.backendRuns}, what ServerConnection installs).
     */
    @Param({"frames", "runs"})
    public String framing;

    private EmbeddedChannel channel;
    private ChannelPipeline pipeline;
    private ByteBufAllocator alloc;
    private Sink sink;
    private byte[] simpleReply;
    private byte[] extendedReply;

    /** The relay handler's stand-in: walks the message headers in what it gets, releases it. */
    static final class Sink extends ChannelInboundHandlerAdapter {
        Blackhole bh;
        long frames;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf buf = (ByteBuf) msg;
            int end = buf.writerIndex();
            for (int i = buf.readerIndex(); i < end; i = Messages.end(buf, i)) {
                if (bh != null) { // null only during the set-up sanity check
                    bh.consume(buf.getByte(i));
                }
                frames++;
            }
            buf.release();
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            // the relay flushes here; nothing to do
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        if (!(Thread.currentThread() instanceof FastThreadLocalThread)) {
            throw new IllegalStateException(
                    "not on an event-loop-like thread ("
                            + Thread.currentThread()
                            + "): run with -Djmh.executor=CUSTOM -Djmh.executor.class="
                            + EventLoopThreadExecutor.class.getName());
        }
        alloc =
                switch (allocator) {
                    case "pooled" -> PooledByteBufAllocator.DEFAULT;
                    case "adaptive" -> new AdaptiveByteBufAllocator();
                    default -> throw new IllegalArgumentException("allocator: " + allocator);
                };
        sink = new Sink();
        FrameDecoder decoder =
                switch (framing) {
                    case "frames" -> FrameDecoder.backend(Integer.MAX_VALUE);
                    case "runs" -> FrameDecoder.backendRuns(Integer.MAX_VALUE);
                    default -> throw new IllegalArgumentException("framing: " + framing);
                };
        channel = new EmbeddedChannel(decoder, sink);
        channel.config().setAllocator(alloc);
        pipeline = channel.pipeline();
        simpleReply = simpleQueryReplyBytes();
        extendedReply = extendedQueryReplyBytes();

        // Sanity: both replies frame into the expected number of messages, nothing left over.
        read(simpleReply);
        read(extendedReply);
        channel.checkException();
        if (sink.frames != SIMPLE_MESSAGES + EXTENDED_MESSAGES) {
            throw new IllegalStateException(
                    "framed "
                            + sink.frames
                            + " messages, expected "
                            + (SIMPLE_MESSAGES + EXTENDED_MESSAGES));
        }
        sink.frames = 0;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        channel.checkException();
        if (channel.finishAndReleaseAll()) {
            throw new IllegalStateException("frames reached the end of the pipeline unreleased");
        }
        if (sink.frames == 0) {
            throw new IllegalStateException("no frames decoded");
        }
    }

    @Benchmark
    @OperationsPerInvocation(SIMPLE_MESSAGES)
    public void simpleQueryReply(Blackhole bh) {
        sink.bh = bh;
        read(simpleReply);
    }

    @Benchmark
    @OperationsPerInvocation(EXTENDED_MESSAGES)
    public void extendedQueryReply(Blackhole bh) {
        sink.bh = bh;
        read(extendedReply);
    }

    /**
     * One socket read: an I/O buffer from the channel's allocator, filled, fired down the pipeline.
     */
    private void read(byte[] bytes) {
        ByteBuf in = alloc.ioBuffer(bytes.length);
        in.writeBytes(bytes);
        pipeline.fireChannelRead(in);
        pipeline.fireChannelReadComplete();
    }

    // ---------------------------------------------------------------- realistic server replies

    /** {@code SELECT 1} over the simple query protocol. */
    static byte[] simpleQueryReplyBytes() {
        ByteBuf b = Unpooled.buffer();
        rowDescription(b, new Field[] {new Field("?column?", 0, 0, 23, 4)});
        dataRow(b, "1");
        commandComplete(b, "SELECT 1");
        readyForQuery(b, 'I');
        return bytes(b);
    }

    /**
     * {@code SELECT id, email, display_name, created_at, balance FROM accounts WHERE tenant_id = $1
     * ORDER BY id LIMIT 50}, extended protocol, text format.
     */
    static byte[] extendedQueryReplyBytes() {
        ByteBuf b = Unpooled.buffer();
        empty(b, '1'); // ParseComplete
        empty(b, '2'); // BindComplete
        int table = 16_421;
        rowDescription(
                b,
                new Field[] {
                    new Field("id", table, 1, 20, 8), // int8
                    new Field("email", table, 3, 25, -1), // text
                    new Field("display_name", table, 4, 1043, -1), // varchar
                    new Field("created_at", table, 6, 1184, 8), // timestamptz
                    new Field("balance", table, 7, 1700, -1), // numeric
                });
        for (int i = 0; i < EXTENDED_ROWS; i++) {
            long id = 1_048_576L + i * 37L;
            dataRow(
                    b,
                    Long.toString(id),
                    "user" + id + "@example.com",
                    "User Number " + id,
                    String.format(
                            "2026-11-%02d 09:%02d:%02d.%06d+00",
                            1 + i % 28, i % 60, (i * 7) % 60, i * 1013),
                    String.format("%d.%02d", 1000 + i * 31, i % 100));
        }
        commandComplete(b, "SELECT " + EXTENDED_ROWS);
        readyForQuery(b, 'I');
        return bytes(b);
    }

    record Field(String name, int tableOid, int column, int typeOid, int typeLength) {}

    private static void rowDescription(ByteBuf b, Field[] fields) {
        int start = begin(b, 'T');
        b.writeShort(fields.length);
        for (Field f : fields) {
            cstring(b, f.name);
            b.writeInt(f.tableOid)
                    .writeShort(f.column)
                    .writeInt(f.typeOid)
                    .writeShort(f.typeLength)
                    .writeInt(-1) // type modifier
                    .writeShort(0); // text format
        }
        end(b, start);
    }

    private static void dataRow(ByteBuf b, String... values) {
        int start = begin(b, 'D');
        b.writeShort(values.length);
        for (String v : values) {
            byte[] bytes = v.getBytes(StandardCharsets.UTF_8);
            b.writeInt(bytes.length).writeBytes(bytes);
        }
        end(b, start);
    }

    private static void commandComplete(ByteBuf b, String tag) {
        int start = begin(b, 'C');
        cstring(b, tag);
        end(b, start);
    }

    private static void readyForQuery(ByteBuf b, char status) {
        int start = begin(b, 'Z');
        b.writeByte(status);
        end(b, start);
    }

    private static void empty(ByteBuf b, char type) {
        end(b, begin(b, type));
    }

    private static int begin(ByteBuf b, char type) {
        b.writeByte(type);
        int start = b.writerIndex();
        b.writeInt(0); // length, patched in end()
        return start;
    }

    private static void end(ByteBuf b, int start) {
        b.setInt(start, b.writerIndex() - start);
    }

    private static void cstring(ByteBuf b, String s) {
        b.writeBytes(s.getBytes(StandardCharsets.UTF_8)).writeByte(0);
    }

    private static byte[] bytes(ByteBuf b) {
        byte[] out = new byte[b.readableBytes()];
        b.readBytes(out);
        b.release();
        return out;
    }
}
