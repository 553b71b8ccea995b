package io.pgrelay.bench;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.pgrelay.session.SessionState;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What keeping session state in transaction mode costs a transaction that changes nothing: the work
 * track_session_state adds on the relay's path, per transaction of pgbench -S.
 *
 * <ul>
 *   <li>{@link #scanQueryText}: the scan of a Query's text for the words that hide a session change
 *       behind a SELECT tag (pgbench's 57-byte select-only query, in a pooled direct buffer as the
 *       relay has it).
 *   <li>{@link #classifyCommandTag}: the look at its CommandComplete ("SELECT 1").
 * </ul>
 *
 * Together they are the whole added cost of such a transaction (no check query is sent); compare
 * with the proxy's CPU per transaction in pgbench-compare.sh (tens of microseconds).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
@State(Scope.Benchmark)
public class SessionStateBenchmark {

    private ByteBuf query;
    private ByteBuf commandComplete;

    @Setup
    public void setUp() {
        byte[] sql =
                "SELECT abalance FROM pgbench_accounts WHERE aid = 73129;\0"
                        .getBytes(StandardCharsets.US_ASCII);
        query = PooledByteBufAllocator.DEFAULT.directBuffer();
        query.writeByte('Q').writeInt(4 + sql.length).writeBytes(sql);
        byte[] tag = "SELECT 1\0".getBytes(StandardCharsets.US_ASCII);
        commandComplete = PooledByteBufAllocator.DEFAULT.directBuffer();
        commandComplete.writeByte('C').writeInt(4 + tag.length).writeBytes(tag);
    }

    @TearDown
    public void tearDown() {
        query.release();
        commandComplete.release();
    }

    @Benchmark
    public SessionState.Signs scanQueryText() {
        return SessionState.signs(query, 5, query.writerIndex());
    }

    @Benchmark
    public int classifyCommandTag() {
        return SessionState.changes(commandComplete, 0);
    }
}
