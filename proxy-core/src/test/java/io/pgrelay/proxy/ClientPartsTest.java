package io.pgrelay.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import io.pgrelay.protocol.ProtocolException;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.session.SessionCounters;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;
import javax.net.ssl.SSLHandshakeException;
import org.junit.jupiter.api.Test;

/** The small parts a client session is made of, on their own. */
class ClientPartsTest {

    private static ByteBuf frame(int size) {
        return Unpooled.buffer(size).writeZero(size);
    }

    @Test
    void pendingRequestsCountOnlyWhatWaitsForAServerAndKeepArrivalOrder() {
        PendingRequests pending = new PendingRequests();
        ByteBuf early = frame(900_000);
        pending.hold(early);
        ByteBuf first = frame(600_000);
        assertFalse(pending.queue(first), "held frames do not count toward the limit");
        ByteBuf second = frame(600_000);
        assertTrue(pending.queue(second), "over 1 MiB queued for a server: pause the client");
        assertSame(early, pending.poll());
        List<ByteBuf> rest = pending.takeAll();
        assertEquals(List.of(first, second), rest);
        assertTrue(pending.isEmpty());
        assertFalse(pending.queue(frame(600_000)), "emptied: counting starts again");
        pending.releaseAll();
        assertTrue(pending.isEmpty());
        rest.forEach(ByteBuf::release);
        early.release();
    }

    @Test
    void pendingRequestsForgetTheCountOnceDrainedByPolling() {
        PendingRequests pending = new PendingRequests();
        ByteBuf a = frame(700_000);
        pending.queue(a);
        assertSame(a, pending.poll());
        assertNull(pending.poll());
        ByteBuf b = frame(700_000);
        assertFalse(pending.queue(b), "the first frame's bytes left with it");
        pending.releaseAll();
        assertEquals(0, b.refCnt());
        a.release();
    }

    @Test
    void readsStayPausedWhileAnyReasonHolds() {
        EmbeddedChannel channel = new EmbeddedChannel();
        ReadPause pause = new ReadPause(channel);
        pause.remove(ReadPause.WAITING);
        assertTrue(channel.config().isAutoRead(), "removing a reason never added changes nothing");
        pause.add(ReadPause.WAITING);
        pause.add(ReadPause.BACKPRESSURE);
        assertFalse(channel.config().isAutoRead());
        pause.remove(ReadPause.WAITING);
        assertFalse(channel.config().isAutoRead(), "the server is still slow");
        pause.remove(ReadPause.BACKPRESSURE);
        assertTrue(channel.config().isAutoRead());
        channel.finishAndReleaseAll();
    }

    @Test
    void clientOutputFlushesOncePerEventAndOnlyWhenItWrote() {
        EmbeddedChannel channel = new EmbeddedChannel();
        SessionCounters counters =
                new SessionCounters(
                        new SessionCounters.Timings() {
                            @Override
                            public void query(long nanos, long now) {}

                            @Override
                            public void transaction(long nanos, long now) {}
                        });
        ClientOutput output = new ClientOutput(channel, counters);
        output.flush();
        assertNull(channel.readOutbound(), "nothing written, nothing flushed");
        output.reply(Unpooled.wrappedBuffer(new byte[] {1}));
        output.write(Unpooled.wrappedBuffer(new byte[] {2}));
        assertNull(channel.readOutbound(), "written, not yet flushed");
        output.flush();
        ByteBuf one = channel.readOutbound();
        ByteBuf two = channel.readOutbound();
        assertEquals(1, one.getByte(0));
        assertEquals(2, two.getByte(0));
        long[] sent = new long[1];
        counters.addTo(
                (in, out, queries, queryMicros, transactions, transactionMicros) -> sent[0] = out);
        assertEquals(1, sent[0], "only the relayed reply counts as sent to the client");
        one.release();
        two.release();
        channel.finishAndReleaseAll();
    }

    @Test
    void faultsAreAnsweredAsPostgreSqlWouldAnswerThem() {
        InetSocketAddress client = new InetSocketAddress("127.0.0.1", 5000);
        ClientFault malformedStartup =
                ClientFault.of(ProtocolException.unanswered("bad startup"), client, null);
        assertNull(malformedStartup.answer(), "closed without a reply, as PostgreSQL does");
        ClientFault violation =
                ClientFault.of(
                        new DecoderException(
                                new ProtocolException(SqlState.PROTOCOL_VIOLATION, "too long")),
                        client,
                        "app");
        assertEquals(SqlState.PROTOCOL_VIOLATION, violation.answer().sqlState());
        assertTrue(violation.answer().isFatal());
        assertFalse(violation.internal());
        assertNull(ClientFault.of(new SSLHandshakeException("no"), client, null).answer());
        assertNull(ClientFault.of(new IOException("reset"), client, "app").answer());
        ClientFault defect = ClientFault.of(new IllegalStateException("bug"), client, "app");
        assertTrue(defect.internal(), "its server connection must never be reused");
        assertEquals(SqlState.INTERNAL_ERROR, defect.answer().sqlState());
    }
}
