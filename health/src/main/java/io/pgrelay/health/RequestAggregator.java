package io.pgrelay.health;

import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;

/**
 * Netty's aggregator with {@link HttpLimits#MAX_BODY}, except that an oversized request is always
 * answered 413 and the connection closed. Netty's own keeps a keep-alive connection open and drains
 * the body, which here would only let a client make pgrelay read data it never wants.
 */
final class RequestAggregator extends HttpObjectAggregator {

    RequestAggregator() {
        super(HttpLimits.MAX_BODY, true);
    }

    @Override
    protected void handleOversizedMessage(ChannelHandlerContext ctx, HttpMessage oversized) {
        FullHttpResponse tooLarge =
                new DefaultFullHttpResponse(
                        HttpVersion.HTTP_1_1,
                        HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE,
                        Unpooled.EMPTY_BUFFER);
        tooLarge.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, 0);
        tooLarge.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        ctx.writeAndFlush(tooLarge).addListener(ChannelFutureListener.CLOSE);
    }
}
