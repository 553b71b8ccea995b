package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.ssl.SslHandler;
import io.pgrelay.tls.TlsContexts;
import java.util.List;

/**
 * PostgreSQL 17's direct TLS (libpq's {@code sslnegotiation=direct}): the client starts the TLS
 * handshake at once instead of sending an SSLRequest first. The first byte tells: a TLS handshake
 * record is 0x16, while a startup packet starts with its length, whose first byte is 0 for any
 * length PostgreSQL accepts. Looks at that one byte, puts an SslHandler in its place or just
 * leaves, and passes everything on.
 *
 * <p>Whether the handshake named ALPN "postgresql", which PostgreSQL requires of a direct
 * handshake, is checked when the startup packet arrives ({@link ClientLogin}).
 */
final class DirectTls extends ByteToMessageDecoder {

    /** The SslHandler's name when the connection started with a direct handshake. */
    static final String HANDLER_NAME = "direct-tls";

    private static final byte TLS_HANDSHAKE_RECORD = 0x16;

    private final SessionServices relay;

    DirectTls(SessionServices relay) {
        this.relay = relay;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (!in.isReadable()) {
            return;
        }
        TlsContexts tls = relay.tls();
        if (in.getByte(in.readerIndex()) == TLS_HANDSHAKE_RECORD && tls.acceptsClients()) {
            SslHandler handler = tls.newClientHandler(ctx.alloc());
            // Removal hands what this decoder holds to the handler taking its place.
            ctx.pipeline().replace(this, HANDLER_NAME, handler);
        } else {
            // Without TLS configured, a direct handshake meets the startup packet check, whose
            // "invalid length" is what PostgreSQL without ssl answers too.
            ctx.pipeline().remove(this);
        }
    }
}
