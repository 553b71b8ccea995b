package io.pgrelay.proxy;

import io.netty.channel.Channel;

/**
 * Pauses a client's reads for as long as any reason holds: waiting for a server (its queue is full,
 * or the leader is being confirmed), or a server that cannot take more (a slow server must slow its
 * client down, not fill pgrelay's memory). Each reason is added and removed by its own path; reads
 * resume when none is left.
 */
final class ReadPause {

    static final int WAITING = 1;
    static final int BACKPRESSURE = 2;

    private final Channel channel;
    private int reasons;

    ReadPause(Channel channel) {
        this.channel = channel;
    }

    void add(int reason) {
        if (reasons == 0) {
            channel.config().setAutoRead(false);
        }
        reasons |= reason;
    }

    void remove(int reason) {
        if (reasons == 0) {
            return;
        }
        reasons &= ~reason;
        if (reasons == 0) {
            channel.config().setAutoRead(true);
        }
    }
}
