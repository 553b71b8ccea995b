package io.pgrelay.session;

import static io.pgrelay.session.Wire.bind;
import static io.pgrelay.session.Wire.bindComplete;
import static io.pgrelay.session.Wire.close;
import static io.pgrelay.session.Wire.closeComplete;
import static io.pgrelay.session.Wire.commandComplete;
import static io.pgrelay.session.Wire.concat;
import static io.pgrelay.session.Wire.copyData;
import static io.pgrelay.session.Wire.copyInResponse;
import static io.pgrelay.session.Wire.dataRow;
import static io.pgrelay.session.Wire.describe;
import static io.pgrelay.session.Wire.error;
import static io.pgrelay.session.Wire.execute;
import static io.pgrelay.session.Wire.flush;
import static io.pgrelay.session.Wire.noData;
import static io.pgrelay.session.Wire.notice;
import static io.pgrelay.session.Wire.parse;
import static io.pgrelay.session.Wire.parseComplete;
import static io.pgrelay.session.Wire.query;
import static io.pgrelay.session.Wire.readyForQuery;
import static io.pgrelay.session.Wire.rowDescription;
import static io.pgrelay.session.Wire.sync;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * The replies a server owes, driven by client and server bytes framed by the real decoders, fed in
 * every piece size: the counting transaction pooling rests on ("every Query and Sync is answered by
 * exactly one ReadyForQuery; after an error the server skips to the Sync").
 */
class ExpectedRepliesTest {

    /** One client's queue, fed framed messages as ClientSession feeds it. */
    private static final class Harness {
        final List<String> undone = new ArrayList<>();
        final List<Boolean> undoneServerStillHasIt = new ArrayList<>();
        final ExpectedReplies replies =
                new ExpectedReplies(
                        (reply, stillHas) -> {
                            undone.add(reply.kind.name());
                            undoneServerStillHasIt.add(stillHas);
                        });
        final int piece;

        /** Per server message: the request it ended ("-" none), as ended by it. */
        final List<String> ended = new ArrayList<>();

        /** Per server message: 'r' when releasable after it, '-' when not. */
        final StringBuilder releasable = new StringBuilder();

        int unansweredAtReadyForQuery;

        Harness(int piece) {
            this.piece = piece;
        }

        void client(ByteBuf... messages) {
            Wire.forEach(Wire.frontendRuns(concat(messages), piece), replies::forwarded);
        }

        void server(ByteBuf... messages) {
            Wire.forEach(
                    Wire.backendRuns(concat(messages), piece),
                    (type, run, index) -> {
                        switch (type) {
                            case Messages.READY_FOR_QUERY -> {
                                unansweredAtReadyForQuery +=
                                        replies.readyForQuery(
                                                MessageFields.transactionStatus(run, index));
                                ended.add("Z");
                            }
                            case Messages.ERROR_RESPONSE -> {
                                replies.serverError();
                                ended.add("E");
                            }
                            default -> {
                                if (type == Messages.COPY_IN_RESPONSE) {
                                    replies.copyInStarted();
                                }
                                ExpectedReply done = replies.replied(type);
                                ended.add(done == null ? "-" : done.kind.name());
                            }
                        }
                        releasable.append(replies.releasable() ? 'r' : '-');
                    });
        }
    }

    private static void forEachPiece(Consumer<Harness> test) {
        for (int piece : Wire.PIECES) {
            test.accept(new Harness(piece));
        }
    }

    // ------------------------------------------------------------------ extended protocol

    @Test
    void pipelineAnsweredInOrderIsReleasableOnlyAfterItsReadyForQuery() {
        forEachPiece(
                h -> {
                    h.client(
                            parse("", "select $1::int", 23),
                            bind("", "", "7"),
                            describe('P', ""),
                            execute(""),
                            sync());
                    assertFalse(h.replies.releasable(), "five replies owed");
                    assertFalse(h.replies.batchOpen(), "the Sync ended the batch");
                    h.server(
                            parseComplete(),
                            bindComplete(),
                            rowDescription("int4"),
                            dataRow("7"),
                            dataRow("8"),
                            commandComplete("SELECT 2"),
                            readyForQuery('I'));
                    assertEquals(
                            List.of("PARSE", "BIND", "DESCRIBE", "-", "-", "EXECUTE", "Z"),
                            h.ended);
                    assertEquals("------r", h.releasable.toString());
                    assertEquals(0, h.unansweredAtReadyForQuery);
                    assertTrue(h.replies.isEmpty());
                    assertEquals(List.of(), h.undone);
                });
    }

    @Test
    void describeOfAStatementEndsWithNoDataOrRowDescription() {
        forEachPiece(
                h -> {
                    h.client(
                            parse("", "insert into t values (1)"),
                            describe('S', ""),
                            bind("", ""),
                            execute(""),
                            sync());
                    h.server(
                            parseComplete(),
                            Wire.message('t', b -> b.writeShort(0)), // ParameterDescription
                            noData(),
                            bindComplete(),
                            commandComplete("INSERT 0 1"),
                            readyForQuery('I'));
                    assertEquals(
                            List.of("PARSE", "-", "DESCRIBE", "BIND", "EXECUTE", "Z"), h.ended);
                    assertEquals("-----r", h.releasable.toString());
                });
    }

    @Test
    void batchAnsweredWithoutItsSyncIsNotReleasable() {
        forEachPiece(
                h -> {
                    h.client(parse("", "select 1"), bind("", ""), execute(""), flush());
                    assertTrue(h.replies.batchOpen());
                    h.server(parseComplete(), bindComplete(), commandComplete("SELECT 1"));
                    assertTrue(h.replies.isEmpty(), "every request answered");
                    assertEquals(Messages.IDLE, h.replies.transactionStatus());
                    assertEquals(
                            "---",
                            h.releasable.toString(),
                            "an error still to come would leave the server skipping to our Sync");
                    h.client(sync());
                    h.server(readyForQuery('I'));
                    assertEquals("---r", h.releasable.toString());
                });
    }

    @Test
    void errorMidBatchSkipsToTheSyncAndUndoesEachSkippedRequest() {
        forEachPiece(
                h -> {
                    h.client(
                            parse("", "select $1::int", 23),
                            bind("", "", "x"),
                            describe('P', ""),
                            execute(""),
                            sync());
                    h.server(
                            parseComplete(),
                            error("22P02", "invalid input syntax for type integer: \"x\""),
                            readyForQuery('I'));
                    assertEquals(List.of("PARSE", "E", "Z"), h.ended);
                    // Newest first: each undo finds the state its request left.
                    assertEquals(List.of("EXECUTE", "DESCRIBE", "BIND"), h.undone);
                    assertEquals(List.of(false, false, false), h.undoneServerStillHasIt);
                    assertEquals("--r", h.releasable.toString());
                    assertEquals(0, h.unansweredAtReadyForQuery);
                    assertFalse(h.replies.skipping());
                });
    }

    @Test
    void errorBeforeTheSyncWasSentSkipsUntilTheClientSendsIt() {
        forEachPiece(
                h -> {
                    h.client(parse("", "selec 1"), bind("", ""), execute(""), flush());
                    h.server(error("42601", "syntax error at or near \"selec\""));
                    assertEquals(List.of("EXECUTE", "BIND", "PARSE"), h.undone);
                    assertTrue(h.replies.skipping());
                    assertTrue(h.replies.isEmpty());
                    assertFalse(h.replies.releasable(), "the server waits for a Sync");
                    h.client(sync());
                    assertFalse(h.replies.skipping());
                    h.server(readyForQuery('I'));
                    assertEquals("-r", h.releasable.toString());
                });
    }

    @Test
    void errorMidBatchDropsASynthesizedReplyQueuedBehindTheFailure() {
        forEachPiece(
                h -> {
                    h.client(parse("", "selec 1"));
                    h.replies.answer(ExpectedReply.parseComplete(null, "s1"));
                    h.client(bind("", ""), sync());
                    h.server(error("42601", "syntax error"));
                    assertEquals(List.of("BIND", "SYNTHESIZED_PARSE_COMPLETE", "PARSE"), h.undone);
                    assertNull(h.replies.nextSynthesized(), "skipped like the server skips");
                    h.server(readyForQuery('I'));
                    assertTrue(h.replies.releasable());
                });
    }

    @Test
    void queryInsideABatchKeepsTheBatchOpen() {
        forEachPiece(
                h -> {
                    h.client(parse("", "select 1"), bind("", ""), execute(""), query("select 2"));
                    assertTrue(h.replies.batchOpen());
                    h.server(
                            parseComplete(),
                            bindComplete(),
                            commandComplete("SELECT 1"),
                            rowDescription("c"),
                            dataRow("2"),
                            commandComplete("SELECT 1"),
                            readyForQuery('I'));
                    assertTrue(h.replies.isEmpty());
                    assertTrue(h.replies.batchOpen(), "the Query did not end the batch");
                    assertEquals("-------", h.releasable.toString());
                    h.client(sync());
                    h.server(readyForQuery('I'));
                    assertTrue(h.replies.releasable());
                });
    }

    @Test
    void wellFormedCloseAndFlushOpenNoBatchMalformedOnesDo() {
        forEachPiece(
                h -> {
                    h.client(close('S', "s1"), flush());
                    assertFalse(h.replies.batchOpen(), "a well-formed Close cannot fail");
                    h.server(closeComplete());
                    assertEquals(List.of("CLOSE"), h.ended);
                    assertTrue(h.replies.releasable());

                    h.client(Wire.message('H', b -> b.writeByte(0)));
                    assertTrue(h.replies.batchOpen(), "a Flush with a body fails");
                    h.client(sync());
                    h.server(readyForQuery('I'));
                    assertTrue(h.replies.releasable());

                    h.client(Wire.message('C', b -> b.writeByte('X').writeByte(0)));
                    assertTrue(h.replies.batchOpen(), "a Close of subtype X fails");
                    h.client(sync());
                    h.server(error("08P01", "invalid CLOSE message subtype 88"));
                    assertEquals(List.of("CLOSE"), h.undone);
                    h.server(readyForQuery('I'));
                    assertTrue(h.replies.releasable());

                    h.client(Wire.message('C', b -> b.writeByte('S').writeByte(0).writeByte(0)));
                    assertTrue(h.replies.batchOpen(), "a Close with bytes after its name fails");
                });
    }

    // ------------------------------------------------------------------ simple protocol

    @Test
    void simpleQueryWithSeveralResultsEndsAtItsReadyForQuery() {
        forEachPiece(
                h -> {
                    h.client(query("select 1; select 2; insert into t values (3)"));
                    assertFalse(h.replies.batchOpen());
                    h.server(
                            rowDescription("a"),
                            dataRow("1"),
                            commandComplete("SELECT 1"),
                            notice("hello"),
                            rowDescription("b"),
                            dataRow("2"),
                            commandComplete("SELECT 1"),
                            commandComplete("INSERT 0 1"),
                            readyForQuery('I'));
                    assertEquals(List.of("-", "-", "-", "-", "-", "-", "-", "-", "Z"), h.ended);
                    assertEquals("--------r", h.releasable.toString());
                });
    }

    @Test
    void errorInsideASimpleQueryChangesNothingButItsStatus() {
        forEachPiece(
                h -> {
                    h.client(query("select 1; select 1/0"), query("select 3"));
                    h.server(
                            rowDescription("a"),
                            dataRow("1"),
                            commandComplete("SELECT 1"),
                            error("22012", "division by zero"),
                            readyForQuery('I'));
                    assertEquals(List.of(), h.undone);
                    assertFalse(h.replies.skipping());
                    assertFalse(h.replies.releasable(), "the second Query is still owed");
                    h.server(
                            rowDescription("c"),
                            dataRow("3"),
                            commandComplete("SELECT 1"),
                            readyForQuery('I'));
                    assertTrue(h.replies.releasable());
                    assertEquals(0, h.unansweredAtReadyForQuery);
                });
    }

    @Test
    void transactionStatusInOrFailedIsNotReleasable() {
        forEachPiece(
                h -> {
                    h.client(query("begin"));
                    h.server(commandComplete("BEGIN"), readyForQuery('T'));
                    assertEquals(Messages.IN_TRANSACTION, h.replies.transactionStatus());
                    assertTrue(h.replies.isEmpty());
                    assertFalse(h.replies.releasable());
                    h.client(query("selec"));
                    h.server(error("42601", "syntax error"), readyForQuery('E'));
                    assertEquals(Messages.FAILED_TRANSACTION, h.replies.transactionStatus());
                    assertFalse(h.replies.releasable());
                    h.client(query("rollback"));
                    h.server(commandComplete("ROLLBACK"), readyForQuery('I'));
                    assertEquals("-----r", h.releasable.toString());
                });
    }

    @Test
    void syncDuringCopyInExpectsNothing() {
        forEachPiece(
                h -> {
                    h.client(query("copy t from stdin"));
                    h.server(copyInResponse());
                    assertFalse(h.replies.releasable());
                    h.client(copyData("1\n"), sync(), copyData("2\n"), Wire.empty('c'));
                    h.server(commandComplete("COPY 2"), readyForQuery('I'));
                    assertEquals(List.of("-", "-", "Z"), h.ended);
                    assertTrue(h.replies.isEmpty(), "the Sync sent during COPY IN is not owed");
                    assertEquals("--r", h.releasable.toString());
                });
    }

    @Test
    void copyFailEndsCopyInToo() {
        forEachPiece(
                h -> {
                    h.client(query("copy t from stdin"));
                    h.server(copyInResponse());
                    h.client(
                            copyData("1\n"),
                            Wire.message('f', b -> b.writeBytes("no\0".getBytes())));
                    h.client(sync()); // after COPY IN: a Sync the server answers
                    h.server(
                            error("57014", "COPY from stdin failed: no"),
                            readyForQuery('I'),
                            readyForQuery('I'));
                    assertEquals(0, h.unansweredAtReadyForQuery);
                    assertTrue(h.replies.releasable());
                });
    }

    // ------------------------------------------------------------------ synthesized replies

    @Test
    void synthesizedRepliesComeOutOnlyWhenEverythingBeforeThemIsAnswered() {
        forEachPiece(
                h -> {
                    h.client(parse("", "select 1"));
                    h.replies.answer(ExpectedReply.closeComplete(null, "gone"));
                    h.client(bind("", ""));
                    h.replies.answer(ExpectedReply.parseComplete(null, "s2"));
                    h.client(sync());
                    assertFalse(h.replies.synthesizedDue());
                    assertNull(h.replies.nextSynthesized());
                    h.server(parseComplete());
                    assertTrue(h.replies.synthesizedDue());
                    ExpectedReply close = h.replies.nextSynthesized();
                    assertEquals(ExpectedReply.Kind.SYNTHESIZED_CLOSE_COMPLETE, close.kind);
                    assertArrayEquals(new byte[] {'3', 0, 0, 0, 4}, Wire.drain(close.message()));
                    assertNull(h.replies.nextSynthesized(), "the Bind is owed first");
                    h.server(bindComplete());
                    ExpectedReply parsed = h.replies.nextSynthesized();
                    assertEquals(ExpectedReply.Kind.SYNTHESIZED_PARSE_COMPLETE, parsed.kind);
                    assertArrayEquals(new byte[] {'1', 0, 0, 0, 4}, Wire.drain(parsed.message()));
                    assertNull(h.replies.nextSynthesized());
                    h.server(readyForQuery('I'));
                    assertTrue(h.replies.releasable());
                });
    }

    @Test
    void failureOnTheServerCarriesPgrelaysError() {
        forEachPiece(
                h -> {
                    h.client(parse("", "select 1"));
                    ErrorResponse mine =
                            ErrorResponse.error("26000", "prepared statement \"x\" does not exist");
                    h.replies.batchStarted();
                    h.replies.expect(ExpectedReply.failure(mine));
                    h.client(bind("", ""), execute(""), sync());
                    assertFalse(h.replies.skipping(), "the server has not failed it yet");
                    h.server(parseComplete());
                    assertSame(mine, h.replies.serverError(), "the server's error is replaced");
                    assertEquals(List.of("EXECUTE", "BIND"), h.undone, "the failure is not undone");
                    assertFalse(h.replies.releasable(), "until the Sync is answered");
                    h.server(readyForQuery('I'));
                    assertTrue(h.replies.releasable());
                });
    }

    @Test
    void failureSkippedAfterAnEarlierErrorIsNotReported() {
        forEachPiece(
                h -> {
                    h.client(parse("", "selec 1"));
                    h.replies.expect(
                            ExpectedReply.failure(ErrorResponse.error("42P05", "already exists")));
                    h.client(sync());
                    // The server's own error comes first; PostgreSQL reports only that one.
                    assertNull(h.replies.serverError());
                    assertEquals(List.of("FAILURE", "PARSE"), h.undone);
                    h.server(readyForQuery('I'));
                    assertTrue(h.replies.releasable());
                });
    }

    @Test
    void readyForQueryUndoesRequestsThatGotNoReplyOfTheirOwn() {
        forEachPiece(
                h -> {
                    h.client(describe('S', "s1"), sync());
                    h.server(readyForQuery('I'));
                    assertEquals(1, h.unansweredAtReadyForQuery);
                    assertEquals(List.of("DESCRIBE"), h.undone);
                    assertEquals(List.of(true), h.undoneServerStillHasIt);
                    assertTrue(h.replies.releasable());
                });
    }

    @Test
    void clearUndoesEverythingTheServerStillHas() {
        forEachPiece(
                h -> {
                    h.client(parse("", "select 1"), bind("", ""), sync());
                    h.replies.expect(ExpectedReply.failure(ErrorResponse.error("26000", "x")));
                    h.replies.clear();
                    assertEquals(List.of("FAILURE", "SYNC", "BIND", "PARSE"), h.undone);
                    assertEquals(List.of(true, true, true, true), h.undoneServerStillHasIt);
                    assertTrue(h.replies.isEmpty());
                });
    }

    // ------------------------------------------------------------------ lost servers

    @Test
    void serverLostCountsWhatTheClientIsOwed() {
        record Case(String name, Consumer<Harness> before, ExpectedReplies.Lost lost, int undone) {}
        List<Case> cases =
                List.of(
                        new Case(
                                "a Query unanswered",
                                h -> h.client(query("select pg_sleep(10)")),
                                new ExpectedReplies.Lost(1, false, false),
                                1),
                        new Case(
                                "a batch without its Sync",
                                h -> h.client(parse("", "select 1"), bind("", ""), execute("")),
                                new ExpectedReplies.Lost(0, true, false),
                                3),
                        new Case(
                                "a batch partly answered, without its Sync",
                                h -> {
                                    h.client(parse("", "select 1"), bind("", ""), execute(""));
                                    h.server(parseComplete(), bindComplete(), commandComplete("x"));
                                },
                                new ExpectedReplies.Lost(0, true, false),
                                0),
                        new Case(
                                "a whole batch unanswered",
                                h ->
                                        h.client(
                                                parse("", "select 1"),
                                                bind("", ""),
                                                execute(""),
                                                sync()),
                                new ExpectedReplies.Lost(1, false, false),
                                4),
                        new Case(
                                "a batch and a Query",
                                h ->
                                        h.client(
                                                parse("", "select 1"),
                                                bind("", ""),
                                                execute(""),
                                                sync(),
                                                query("select 2")),
                                new ExpectedReplies.Lost(2, false, false),
                                5),
                        new Case(
                                "a synced batch, then a new one unsynced",
                                h ->
                                        h.client(
                                                parse("", "select 1"),
                                                sync(),
                                                parse("", "select 2"),
                                                bind("", "")),
                                new ExpectedReplies.Lost(1, true, false),
                                4),
                        new Case(
                                "the server skipping to a Sync not sent yet",
                                h -> {
                                    h.client(parse("", "selec"), bind("", ""));
                                    h.server(error("42601", "syntax error"));
                                },
                                new ExpectedReplies.Lost(0, true, false),
                                0),
                        new Case(
                                "idle in transaction",
                                h -> {
                                    h.client(query("begin"));
                                    h.server(commandComplete("BEGIN"), readyForQuery('T'));
                                },
                                new ExpectedReplies.Lost(0, false, true),
                                0),
                        new Case(
                                "a Query in a failed transaction",
                                h -> {
                                    h.client(query("begin"), query("selec"), query("select 1"));
                                    h.server(
                                            commandComplete("BEGIN"),
                                            readyForQuery('T'),
                                            error("42601", "syntax error"),
                                            readyForQuery('E'));
                                },
                                new ExpectedReplies.Lost(1, false, true),
                                1),
                        new Case(
                                "nothing owed",
                                h -> {
                                    h.client(query("select 1"));
                                    h.server(commandComplete("SELECT 1"), readyForQuery('I'));
                                },
                                new ExpectedReplies.Lost(0, false, false),
                                0));
        for (Case c : cases) {
            forEachPiece(
                    h -> {
                        c.before().accept(h);
                        int undoneBefore = h.undone.size();
                        assertEquals(c.lost(), h.replies.serverLost(), c.name());
                        assertEquals(c.undone(), h.undone.size() - undoneBefore, c.name());
                        assertTrue(
                                h
                                        .undoneServerStillHasIt
                                        .subList(undoneBefore, h.undoneServerStillHasIt.size())
                                        .stream()
                                        .noneMatch(b -> b),
                                c.name() + ": the server is gone with what it had");
                        // Everything starts over for the next server.
                        assertTrue(h.replies.releasable(), c.name());
                        assertEquals(Messages.IDLE, h.replies.transactionStatus());
                        assertFalse(h.replies.skipping());
                        assertFalse(h.replies.batchOpen());
                        assertEquals(
                                new ExpectedReplies.Lost(0, false, false),
                                h.replies.serverLost(),
                                c.name() + ": nothing owed twice");
                    });
        }
    }

    @Test
    void serverLostDuringCopyInForgetsTheCopy() {
        forEachPiece(
                h -> {
                    h.client(query("copy t from stdin"));
                    h.server(copyInResponse());
                    assertEquals(new ExpectedReplies.Lost(1, false, false), h.replies.serverLost());
                    // A Sync on the next server is counted again.
                    h.client(sync());
                    assertFalse(h.replies.isEmpty());
                });
    }
}
