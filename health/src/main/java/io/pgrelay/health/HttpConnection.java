package io.pgrelay.health;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.netty.util.ReferenceCountUtil;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.ArrayDeque;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One HTTP connection after decoding and aggregation: answers its requests one at a time, in order.
 * Cheap answers (/health, /ready, errors) are made on the event loop; scrapes and the status page
 * go to the render thread and their response is written back from the loop.
 *
 * <p>While a request is being served the channel stops reading, so a client that pipelines requests
 * without reading the responses cannot make pgrelay buffer them: at most one response per
 * connection is in flight, and the few requests already decoded from the same read wait in a short
 * queue.
 */
final class HttpConnection extends ChannelInboundHandlerAdapter {

    private static final Logger log = LoggerFactory.getLogger(HealthServer.class);

    /** Requests decoded while one is served; a client pipelining deeper than this is closed. */
    private static final int MAX_PIPELINED = 8;

    /**
     * What is kept of a request once its buffers are released; {@code error} is 0 when it parsed.
     */
    private record Request(
            HttpVersion version,
            String method,
            String path,
            String accept,
            boolean keepAlive,
            int error) {

        static Request of(FullHttpRequest full) {
            HttpVersion version = full.protocolVersion();
            String method = full.method().name();
            DecoderResult decoded = full.decoderResult();
            if (decoded.isFailure()) {
                return new Request(version, method, "", null, false, decodeError(decoded.cause()));
            }
            String path = pathOf(full.uri());
            if (path == null) {
                return new Request(version, method, "", null, false, 400);
            }
            return new Request(
                    version,
                    method,
                    path,
                    full.headers().get(HttpHeaderNames.ACCEPT),
                    HttpUtil.isKeepAlive(full),
                    0);
        }

        private static int decodeError(Throwable cause) {
            if (cause instanceof TooLongHttpLineException) {
                return 414;
            }
            if (cause instanceof TooLongHttpHeaderException) {
                return 431;
            }
            return cause instanceof TooLongFrameException ? 413 : 400;
        }

        /** The decoded path of an origin-form ("/x?y") or absolute-form request target, or null. */
        private static String pathOf(String uri) {
            try {
                if (uri.startsWith("/")) {
                    return new QueryStringDecoder(uri).path();
                }
                String raw = new URI(uri).getRawPath();
                return raw == null ? uri : new QueryStringDecoder(raw).path();
            } catch (URISyntaxException | IllegalArgumentException e) {
                return null;
            }
        }

        boolean isHead() {
            return method.equals("HEAD");
        }
    }

    private final Endpoints endpoints;
    private final Executor renderThread;
    private final int maxPendingRenders;
    private final ConnectionDeadlines deadlines;
    private final ArrayDeque<Request> pipelined = new ArrayDeque<>();
    private ChannelHandlerContext ctx;
    private boolean serving;

    HttpConnection(
            Endpoints endpoints,
            Executor renderThread,
            int maxPendingRenders,
            ConnectionDeadlines deadlines) {
        this.endpoints = endpoints;
        this.renderThread = renderThread;
        this.maxPendingRenders = maxPendingRenders;
        this.deadlines = deadlines;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        Request request;
        try {
            if (!(msg instanceof FullHttpRequest full)) {
                return;
            }
            request = Request.of(full);
        } finally {
            // Nothing past this point needs the request's buffers: a render may outlive the
            // channel.
            ReferenceCountUtil.release(msg);
        }
        if (!serving) {
            serve(request);
        } else if (pipelined.size() < MAX_PIPELINED) {
            pipelined.add(request);
        } else {
            log.debug(
                    "closing HTTP connection from {}: more than {} pipelined requests",
                    ctx.channel().remoteAddress(),
                    MAX_PIPELINED);
            ctx.close();
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        log.debug(
                "HTTP connection from {} failed: {}",
                ctx.channel().remoteAddress(),
                cause.toString());
        ctx.close();
    }

    private void serve(Request request) {
        serving = true;
        deadlines.requestReceived();
        ctx.channel().config().setAutoRead(false);
        if (request.error != 0) {
            send(
                    request,
                    Endpoints.Response.of(
                            request.error,
                            Endpoints.TEXT,
                            HttpResponseStatus.valueOf(request.error).reasonPhrase() + "\n"));
        } else if (Endpoints.isSlow(request.method, request.path)) {
            try {
                renderThread.execute(() -> render(request));
            } catch (RejectedExecutionException e) {
                send(
                        request,
                        Endpoints.Response.of(
                                503,
                                Endpoints.TEXT,
                                "busy: "
                                        + maxPendingRenders
                                        + " scrapes or status pages are already waiting; try again\n"));
            }
        } else {
            send(request, endpoints.answer(request.method, request.path, request.accept));
        }
    }

    /** On the render thread. */
    private void render(Request request) {
        if (!ctx.channel().isActive()) {
            return; // the client gave up: spare the scrape
        }
        Endpoints.Response response =
                endpoints.answer(request.method, request.path, request.accept);
        try {
            ctx.executor().execute(() -> send(request, response));
        } catch (RejectedExecutionException e) {
            // The event loop is shutting down and takes the channel with it.
        }
    }

    private void send(Request request, Endpoints.Response answer) {
        if (!ctx.channel().isActive()) {
            return;
        }
        boolean keepAlive = request.keepAlive;
        ByteBuf body =
                request.isHead() || answer.body().length == 0
                        ? Unpooled.EMPTY_BUFFER
                        : Unpooled.wrappedBuffer(answer.body());
        FullHttpResponse response =
                new DefaultFullHttpResponse(
                        request.version, HttpResponseStatus.valueOf(answer.status()), body);
        HttpHeaders headers = response.headers();
        headers.set(HttpHeaderNames.CONTENT_TYPE, answer.contentType());
        headers.set(HttpHeaderNames.CACHE_CONTROL, HttpHeaderValues.NO_STORE);
        // For HEAD too: it says what GET would return.
        headers.setInt(HttpHeaderNames.CONTENT_LENGTH, answer.body().length);
        if (answer.allow() != null) {
            headers.set(HttpHeaderNames.ALLOW, answer.allow());
        }
        if (!keepAlive) {
            headers.set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        } else if (request.version.equals(HttpVersion.HTTP_1_0)) {
            headers.set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
        }
        deadlines.responseWritten();
        ctx.writeAndFlush(response).addListener((ChannelFuture f) -> sent(f, keepAlive));
    }

    private void sent(ChannelFuture write, boolean keepAlive) {
        if (!write.isSuccess() || !keepAlive) {
            ctx.close();
            return;
        }
        serving = false;
        deadlines.responseSent();
        Request next = pipelined.poll();
        if (next != null) {
            serve(next);
        } else {
            ctx.channel().config().setAutoRead(true);
        }
    }
}
