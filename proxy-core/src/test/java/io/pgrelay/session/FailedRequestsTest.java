package io.pgrelay.session;

import static io.pgrelay.session.Wire.bind;
import static io.pgrelay.session.Wire.concat;
import static io.pgrelay.session.Wire.copyData;
import static io.pgrelay.session.Wire.execute;
import static io.pgrelay.session.Wire.parse;
import static io.pgrelay.session.Wire.query;
import static io.pgrelay.session.Wire.sync;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.SqlState;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Requests answered with an error without a server, as PostgreSQL answers failed requests: a simple
 * Query with ErrorResponse and ReadyForQuery, an extended batch with one ErrorResponse at its Sync.
 * Client messages come through the real framing decoder in every piece size.
 */
class FailedRequestsTest {

    private static final ErrorResponse LOST =
            ErrorResponse.fatal(SqlState.CONNECTION_FAILURE, "server connection lost");
    private static final ErrorResponse OTHER =
            ErrorResponse.error(SqlState.CANNOT_CONNECT_NOW, "no server");

    /** What the client was sent: "E<sqlstate>" for fail (error then ReadyForQuery), "Z" alone. */
    private static final class Answers implements FailedRequests.Client {
        final List<String> sent = new ArrayList<>();

        @Override
        public void fail(ErrorResponse error) {
            sent.add("E" + error.sqlState());
        }

        @Override
        public void readyForQuery() {
            sent.add("Z");
        }
    }

    /** Feeds client messages to {@code failed} while active; returns how many it absorbed. */
    private static int absorb(FailedRequests failed, int piece, ByteBuf... messages) {
        int[] absorbed = new int[1];
        Wire.forEach(
                Wire.frontendRuns(concat(messages), piece),
                (type, run, index) -> {
                    if (failed.active()) {
                        failed.absorb(type);
                        absorbed[0]++;
                    }
                });
        return absorbed[0];
    }

    @Test
    void queryAfterALostTransactionFailsOnce() {
        for (int piece : Wire.PIECES) {
            Answers client = new Answers();
            FailedRequests failed = new FailedRequests(client);
            assertFalse(failed.active());
            failed.serverLost(new ExpectedReplies.Lost(0, false, true), LOST);
            assertEquals(List.of(), client.sent, "nothing was waiting");
            assertTrue(failed.active());
            assertFalse(failed.skippingToSync());
            assertEquals(1, absorb(failed, piece, query("select 1"), query("select 2")));
            assertEquals(List.of("E08006"), client.sent);
            assertFalse(failed.active(), "the second Query goes to a server");
        }
    }

    @Test
    void requestsWaitingWhenTheServerIsLostFailNow() {
        Answers client = new Answers();
        FailedRequests failed = new FailedRequests(client);
        failed.serverLost(new ExpectedReplies.Lost(2, false, true), LOST);
        assertEquals(List.of("E08006", "E08006"), client.sent);
        assertFalse(failed.active(), "the transaction's failure was reported with them");
    }

    @Test
    void unsyncedBatchFailsAtItsSync() {
        for (int piece : Wire.PIECES) {
            Answers client = new Answers();
            FailedRequests failed = new FailedRequests(client);
            failed.serverLost(new ExpectedReplies.Lost(1, true, false), LOST);
            assertEquals(List.of("E08006"), client.sent, "the synced part failed now");
            assertTrue(failed.skippingToSync());
            assertEquals(3, absorb(failed, piece, bind("", ""), execute(""), sync(), query("x")));
            assertEquals(List.of("E08006", "E08006"), client.sent);
            assertFalse(failed.active());
        }
    }

    @Test
    void batchAfterALostTransactionFailsOnceAtItsSync() {
        for (int piece : Wire.PIECES) {
            Answers client = new Answers();
            FailedRequests failed = new FailedRequests(client);
            failed.failNext(LOST);
            assertEquals(
                    4,
                    absorb(
                            failed,
                            piece,
                            parse("", "select 1"),
                            bind("", ""),
                            execute(""),
                            sync(),
                            query("next")));
            assertEquals(List.of("E08006"), client.sent);
            assertFalse(failed.active());
        }
    }

    @Test
    void reportedSkipToSyncAnswersTheSyncWithReadyForQueryOnly() {
        for (int piece : Wire.PIECES) {
            Answers client = new Answers();
            FailedRequests failed = new FailedRequests(client);
            failed.reportedSkipToSync();
            assertTrue(failed.skippingToSync());
            assertEquals(3, absorb(failed, piece, bind("", ""), execute(""), sync()));
            assertEquals(List.of("Z"), client.sent);
            assertFalse(failed.active());
        }
    }

    @Test
    void copyDataAfterALostTransactionIsDroppedAndTheNextQueryFails() {
        for (int piece : Wire.PIECES) {
            Answers client = new Answers();
            FailedRequests failed = new FailedRequests(client);
            failed.failNext(LOST);
            assertEquals(
                    4,
                    absorb(
                            failed,
                            piece,
                            copyData("1\n"),
                            copyData("2\n"),
                            Wire.empty('c'),
                            query("select 1")));
            assertEquals(List.of("E08006"), client.sent);
        }
    }

    @Test
    void loneSyncAfterALostTransactionFails() {
        Answers client = new Answers();
        FailedRequests failed = new FailedRequests(client);
        failed.failNext(LOST);
        absorb(failed, 1, sync());
        assertEquals(List.of("E08006"), client.sent);
        assertFalse(failed.active());
    }

    @Test
    void failEachFailsQueuedRequestsEachOnItsOwn() {
        for (int piece : Wire.PIECES) {
            Answers client = new Answers();
            FailedRequests failed = new FailedRequests(client);
            List<Byte> types = new ArrayList<>();
            Wire.forEach(
                    Wire.frontendRuns(
                            concat(
                                    query("a"),
                                    parse("", "b"),
                                    bind("", ""),
                                    execute(""),
                                    sync(),
                                    query("c"),
                                    parse("", "d"),
                                    bind("", "")),
                            piece),
                    (type, run, index) -> types.add(type));
            failed.endOfQueue();
            for (byte type : types) {
                failed.failEach(OTHER, type);
            }
            failed.endOfQueue();
            assertEquals(List.of("E57P03", "E57P03", "E57P03"), client.sent);
            assertTrue(failed.skippingToSync(), "the last batch has no Sync yet");
            absorb(failed, piece, execute(""), sync(), query("e"));
            assertEquals(List.of("E57P03", "E57P03", "E57P03", "E57P03"), client.sent);
            assertFalse(failed.active(), "a later Query is a new request");
        }
    }

    @Test
    void serverLostWhileAlreadySkippingKeepsOneErrorForTheBatch() {
        Answers client = new Answers();
        FailedRequests failed = new FailedRequests(client);
        failed.skipToSync(OTHER);
        absorb(failed, 1, bind("", ""));
        assertEquals(List.of(), client.sent);
        absorb(failed, 1, sync());
        assertEquals(List.of("E57P03"), client.sent);
    }
}
