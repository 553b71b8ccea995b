package io.pgrelay.testkit;

import io.netty.buffer.AbstractByteBufAllocator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.UnpooledHeapByteBuf;
import java.util.ArrayList;
import java.util.List;

/**
 * Unpooled heap buffers that are remembered, so a test can check that every buffer it or the code
 * under test allocated was released. Netty's leak detector finds the same leaks only after a GC;
 * fuzz tests need the answer for each input, at once.
 */
public final class TrackingAllocator extends AbstractByteBufAllocator {

    private final List<ByteBuf> allocated = new ArrayList<>();

    public TrackingAllocator() {
        super(false);
    }

    @Override
    protected ByteBuf newHeapBuffer(int initialCapacity, int maxCapacity) {
        ByteBuf buf = new UnpooledHeapByteBuf(this, initialCapacity, maxCapacity);
        allocated.add(buf);
        return buf;
    }

    @Override
    protected ByteBuf newDirectBuffer(int initialCapacity, int maxCapacity) {
        // Heap only: the code under test does not care, and heap buffers cost a fuzz run less.
        return newHeapBuffer(initialCapacity, maxCapacity);
    }

    @Override
    public boolean isDirectBufferPooled() {
        return false;
    }

    /** Throws AssertionError naming the first buffer still referenced. */
    public void assertAllReleased() {
        for (int i = 0; i < allocated.size(); i++) {
            ByteBuf buf = allocated.get(i);
            if (buf.refCnt() != 0) {
                throw new AssertionError(
                        "buffer "
                                + i
                                + " of "
                                + allocated.size()
                                + " not released (refCnt "
                                + buf.refCnt()
                                + ", capacity "
                                + buf.capacity()
                                + ")");
            }
        }
    }
}
