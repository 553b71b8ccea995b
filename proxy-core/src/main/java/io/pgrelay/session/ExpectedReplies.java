package io.pgrelay.session;

import io.netty.buffer.ByteBuf;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.MessageChecks;
import io.pgrelay.protocol.Messages;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * The replies the linked server owes one client, in order, and what follows from them: whether the
 * server (or pgrelay) is skipping to the next Sync after an error, whether an extended-protocol
 * batch is open, whether COPY IN runs, the transaction status, and so whether the server connection
 * may go back to the pool.
 *
 * <p>Transaction pooling rests on counting: every Query, Sync and FunctionCall sent to the server
 * will be answered by exactly one ReadyForQuery (a Sync sent during COPY IN is ignored by the
 * server and not counted). The connection is releasable when a ReadyForQuery says idle, no answer
 * is outstanding and no extended-protocol batch has been started without its Sync.
 *
 * <p>Replies pgrelay makes up (see {@link ExpectedReply}) wait in the same queue until everything
 * before them is answered; the caller takes them with {@link #nextSynthesized}. Requests that will
 * never be answered (failed, skipped, lost with the server) are handed to the {@link Undo}, so the
 * statement maps forget what they did.
 */
public final class ExpectedReplies {

    /** Undoes what a request that will get no reply did to the statement maps. */
    public interface Undo {
        void undo(ExpectedReply reply, boolean serverStillHasIt);
    }

    /** What a lost server connection leaves the client owed. */
    public record Lost(int unanswered, boolean unsynced, boolean inTransaction) {}

    private final ArrayDeque<ExpectedReply> queue = new ArrayDeque<>(4);
    private final Undo undo;

    /** The server reported an error mid-batch and skips everything up to the next Sync. */
    private boolean serverSkipping;

    /**
     * An extended-protocol message that the server may fail went to it since the last Sync: a
     * failure would make it skip everything up to that Sync, simple Queries included.
     */
    private boolean batchOpen;

    private boolean copyIn;
    private byte transactionStatus = Messages.IDLE;

    public ExpectedReplies(Undo undo) {
        this.undo = undo;
    }

    // ------------------------------------------------------------------ requests

    /**
     * A client message forwarded unchanged (at {@code index} of {@code buf}): what it will be
     * answered with. Parse, Bind, Describe and Execute may always fail and so open a batch; a Flush
     * or Close only when malformed (a well-formed Close cannot fail).
     */
    public void forwarded(byte type, ByteBuf buf, int index) {
        switch (type) {
            case Messages.QUERY, Messages.FUNCTION_CALL -> queue.add(ExpectedReply.QUERY);
            case Messages.SYNC -> {
                if (copyIn) {
                    // The server ignores Sync during COPY IN: no ReadyForQuery will answer it.
                    break;
                }
                serverSkipping = false;
                batchOpen = false;
                queue.add(ExpectedReply.SYNC);
            }
            case Messages.PARSE -> opens(ExpectedReply.PARSE);
            case Messages.BIND -> opens(ExpectedReply.BIND);
            case Messages.DESCRIBE -> opens(ExpectedReply.DESCRIBE);
            case Messages.EXECUTE -> opens(ExpectedReply.EXECUTE);
            case Messages.CLOSE -> {
                batchOpen |= MessageChecks.malformedFlushOrClose(buf, index);
                queue.add(ExpectedReply.CLOSE);
            }
            case Messages.FLUSH -> batchOpen |= MessageChecks.malformedFlushOrClose(buf, index);
            case Messages.COPY_DONE, Messages.COPY_FAIL -> copyIn = false;
            default -> {
                // CopyData: relayed, nothing to expect.
            }
        }
    }

    private void opens(ExpectedReply reply) {
        batchOpen = true;
        queue.add(reply);
    }

    /** A request pgrelay wrote itself (a renamed or injected message). */
    void expect(ExpectedReply reply) {
        queue.add(reply);
    }

    /** A message that the server may fail went out (or was answered in its place). */
    void batchStarted() {
        batchOpen = true;
    }

    /** A reply pgrelay gives itself, in its place behind what is outstanding. */
    void answer(ExpectedReply synthesized) {
        queue.add(synthesized);
    }

    /** Whether a synthesized reply is at the head, due now. */
    public boolean synthesizedDue() {
        ExpectedReply head = queue.peek();
        return head != null && head.isSynthesized();
    }

    /** The synthesized reply now at the head (everything before it answered), or null. */
    public ExpectedReply nextSynthesized() {
        ExpectedReply head = queue.peek();
        return head != null && head.isSynthesized() ? queue.poll() : null;
    }

    // ------------------------------------------------------------------ replies

    /**
     * A server message that is not an error nor a ReadyForQuery: the request it ends, taken off the
     * queue, or null when it ends none (DataRow, notices, replies inside a simple Query).
     */
    public ExpectedReply replied(byte type) {
        ExpectedReply head = queue.peek();
        if (head != null && head.isTerminal(type)) {
            return queue.poll();
        }
        return null;
    }

    /** CopyInResponse: the server now ignores Sync until CopyDone or CopyFail. */
    public void copyInStarted() {
        copyIn = true;
    }

    /**
     * A non-fatal ErrorResponse. Inside an extended-protocol batch the server now skips to the next
     * Sync, and so does the queue; inside a simple Query nothing changes. Returns the error to send
     * the client instead of the server's when the failed request was pgrelay's own {@link
     * ExpectedReply.Kind#FAILURE}, else null.
     */
    public ErrorResponse serverError() {
        ExpectedReply head = queue.peek();
        if (head == null || head.endsWithReadyForQuery()) {
            return null;
        }
        queue.poll();
        ErrorResponse replacement = head.kind == ExpectedReply.Kind.FAILURE ? head.error : null;
        List<ExpectedReply> skipped = new ArrayList<>();
        if (replacement == null) {
            skipped.add(head);
        }
        while (!queue.isEmpty() && queue.peek().kind != ExpectedReply.Kind.SYNC) {
            skipped.add(queue.poll());
        }
        undoNewestFirst(skipped, false);
        serverSkipping = queue.isEmpty();
        return replacement;
    }

    /**
     * Undoes requests that will get no reply, the newest first, so that each undo finds the state
     * its request left (a Close then a Parse of the same name: the Parse's undo frees the name,
     * then the Close's undo restores the old statement).
     */
    private void undoNewestFirst(List<ExpectedReply> skipped, boolean serverStillHasIt) {
        for (int i = skipped.size() - 1; i >= 0; i--) {
            undo.undo(skipped.get(i), serverStillHasIt);
        }
    }

    /**
     * ReadyForQuery with this transaction status: its request is answered. Returns how many
     * requests before it got no reply of their own (there should be none; they are undone).
     */
    public int readyForQuery(byte status) {
        transactionStatus = status;
        int unanswered = 0;
        while (!queue.isEmpty()) {
            ExpectedReply done = queue.poll();
            if (done.endsWithReadyForQuery()) {
                break;
            }
            unanswered++;
            undo.undo(done, true);
        }
        return unanswered;
    }

    /**
     * The server connection is gone: every outstanding request is undone; the caller answers the
     * ones the client waits for and skips the rest of an unfinished batch.
     */
    public Lost serverLost() {
        int unanswered = 0;
        boolean unsynced = serverSkipping;
        List<ExpectedReply> lost = new ArrayList<>(queue);
        queue.clear();
        for (ExpectedReply r : lost) {
            if (r.endsWithReadyForQuery()) {
                unanswered++;
                unsynced = false;
            } else {
                unsynced = true;
            }
        }
        undoNewestFirst(lost, false);
        unsynced |= batchOpen; // the client still owes the Sync that ends its batch
        Lost result = new Lost(unanswered, unsynced, transactionStatus != Messages.IDLE);
        serverSkipping = false;
        batchOpen = false;
        copyIn = false;
        transactionStatus = Messages.IDLE;
        return result;
    }

    /** The client is gone: undo everything still queued (the server had what it was sent). */
    public void clear() {
        List<ExpectedReply> left = new ArrayList<>(queue);
        queue.clear();
        undoNewestFirst(left, true);
    }

    // ------------------------------------------------------------------ state

    /** After an error, everything up to the next Sync is dropped. */
    public boolean skipping() {
        return serverSkipping;
    }

    public boolean batchOpen() {
        return batchOpen;
    }

    public boolean isEmpty() {
        return queue.isEmpty();
    }

    public byte transactionStatus() {
        return transactionStatus;
    }

    /**
     * Whether the server connection may serve someone else now: idle, nothing owed, no batch open
     * (an error still to come would leave the server skipping to a Sync only this client sends).
     */
    public boolean releasable() {
        return transactionStatus == Messages.IDLE
                && queue.isEmpty()
                && !serverSkipping
                && !copyIn
                && !batchOpen;
    }
}
