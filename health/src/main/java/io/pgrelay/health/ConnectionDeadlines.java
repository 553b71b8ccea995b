package io.pgrelay.health;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Closes an HTTP connection whose client is too slow, so that a client which sends a byte and stops
 * cannot hold a connection slot for long. It sits before the HTTP decoder because only there can it
 * see the first byte of a request, which the decoder keeps to itself until the whole head is in.
 *
 * <ul>
 *   <li>reading: from connecting, or from the first byte of a later request, the client has {@link
 *       HttpLimits#requestTimeout()} to complete the request;
 *   <li>serving: no deadline while pgrelay works on the answer (the render queue is bounded
 *       instead), then the client has {@code requestTimeout} again to take the response;
 *   <li>idle: between requests on a keep-alive connection, {@link HttpLimits#idleTimeout()}.
 * </ul>
 *
 * {@link HttpConnection} reports the moves between them; everything runs on the channel's loop.
 */
final class ConnectionDeadlines extends ChannelInboundHandlerAdapter {

    private static final Logger log = LoggerFactory.getLogger(HealthServer.class);

    private enum Phase {
        READING,
        SERVING,
        IDLE
    }

    private final long requestTimeoutNanos;
    private final long idleTimeoutNanos;
    private ChannelHandlerContext ctx;
    private Phase phase = Phase.READING;

    /**
     * Bytes of a pipelined request came in while serving: its deadline starts when serving ends.
     */
    private boolean readWhileServing;

    private ScheduledFuture<?> timer;

    ConnectionDeadlines(HttpLimits limits) {
        this.requestTimeoutNanos = limits.requestTimeout().toNanos();
        this.idleTimeoutNanos = limits.idleTimeout().toNanos();
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
        // An accepted channel is already active here, so channelActive would come too late to
        // matter but is still the place when the handler is added before activation.
        if (ctx.channel().isActive()) {
            arm(requestTimeoutNanos);
        }
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        if (timer == null) {
            arm(requestTimeoutNanos);
        }
        ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof ByteBuf bytes && bytes.isReadable()) {
            if (phase == Phase.IDLE) {
                phase = Phase.READING;
                arm(requestTimeoutNanos);
            } else if (phase == Phase.SERVING) {
                readWhileServing = true;
            }
        }
        ctx.fireChannelRead(msg);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        disarm();
        ctx.fireChannelInactive();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        disarm();
    }

    /** A whole request is in: the time from here on is pgrelay's, not the client's. */
    void requestReceived() {
        phase = Phase.SERVING;
        readWhileServing = false;
        disarm();
    }

    /** The response is written to the channel: the client must now read it in time. */
    void responseWritten() {
        arm(requestTimeoutNanos);
    }

    /** The response has gone out; wait for the next request. */
    void responseSent() {
        if (readWhileServing) {
            phase = Phase.READING;
            arm(requestTimeoutNanos);
        } else {
            phase = Phase.IDLE;
            arm(idleTimeoutNanos);
        }
    }

    private void arm(long nanos) {
        disarm();
        Phase armedFor = phase;
        timer = ctx.executor().schedule(() -> expire(armedFor), nanos, TimeUnit.NANOSECONDS);
    }

    private void disarm() {
        if (timer != null) {
            timer.cancel(false);
            timer = null;
        }
    }

    private void expire(Phase armedFor) {
        timer = null;
        if (ctx.channel().isActive()) {
            // Debug only: a scanner or a slow-loris client would otherwise fill the log.
            log.debug(
                    "closing HTTP connection from {}: {} timed out",
                    ctx.channel().remoteAddress(),
                    armedFor == Phase.IDLE
                            ? "idle keep-alive"
                            : armedFor == Phase.READING ? "request" : "response");
            ctx.close();
        }
    }
}
