package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.pgrelay.protocol.Messages;

/**
 * Asks the Patroni leader, before any write goes to it, whether it is writable yet. PostgreSQL
 * reports in_hot_standby only at login and when it next answers, so a connection opened while the
 * leader was still promoting is asked again with an empty query; before version 14, which has no
 * in_hot_standby, with {@code SELECT pg_is_in_recovery()}. The answer reaches the router through
 * {@link SessionServices#reportHotStandby}; the client then decides with the router's primary.
 */
final class LeaderProbe {

    private final SessionServices relay;
    private ServerConnection asked;

    LeaderProbe(SessionServices relay) {
        this.relay = relay;
    }

    /** Whether a question is out; the client's requests wait behind it. */
    boolean isAsking() {
        return asked != null;
    }

    /** Sends the question on a connection linked to the client. */
    void ask(ServerConnection conn, ByteBufAllocator alloc) {
        asked = conn;
        boolean reports = conn.parameter("in_hot_standby") != null;
        conn.write(Messages.query(alloc, reports ? "" : "SELECT pg_is_in_recovery()"));
        conn.flush();
    }

    /** A reply to the question other than ParameterStatus: the DataRow of pg_is_in_recovery(). */
    void onReply(byte type, ByteBuf frame) {
        // One column, 't' or 'f'.
        int at = frame.readerIndex();
        if (type == Messages.DATA_ROW && frame.readableBytes() >= 12 && frame.getInt(at + 7) == 1) {
            boolean inRecovery = frame.getByte(at + 11) == 't';
            relay.reportHotStandby(asked.backend(), inRecovery ? "on" : "off");
        }
    }

    /** The answer is in (or the connection is gone): the connection asked. */
    ServerConnection done() {
        ServerConnection conn = asked;
        asked = null;
        return conn;
    }
}
