package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.pgrelay.session.SessionCounters;

/**
 * What goes to the client once it is in: the server's replies (counted in the client's bytes
 * received) and pgrelay's own messages, written as they come and flushed once per event, so a
 * server read of many replies costs the client one flush.
 */
final class ClientOutput {

    private final Channel channel;
    private final SessionCounters counters;
    private boolean unflushed;

    ClientOutput(Channel channel, SessionCounters counters) {
        this.channel = channel;
        this.counters = counters;
    }

    /** A reply on its way to the client, counted as bytes the client received. */
    void reply(ByteBuf frame) {
        counters.reply(frame.readableBytes());
        channel.write(frame, channel.voidPromise());
        unflushed = true;
    }

    /** A message pgrelay makes up (an error, a reply it answers itself). */
    void write(ByteBuf message) {
        channel.write(message, channel.voidPromise());
        unflushed = true;
    }

    /** Flushes what this event wrote; nothing when it wrote nothing. */
    void flush() {
        if (unflushed) {
            unflushed = false;
            channel.flush();
        }
    }
}
