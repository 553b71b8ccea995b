package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.ssl.SslHandler;
import io.pgrelay.routing.Backend;
import io.pgrelay.tls.TlsContexts;
import java.util.List;
import java.util.function.Consumer;

/**
 * The start of a server connection with server_tls_sslmode other than disable: pgrelay has sent an
 * SSLRequest and this reads the one-byte answer. 'S' puts an SslHandler in its place and starts the
 * login once the handshake is done; 'N' starts it in plain text, unless the mode requires TLS.
 */
final class ServerTlsRequest extends ByteToMessageDecoder {

    private final TlsContexts tls;
    private final Backend backend;
    private final Runnable startup;
    private final Consumer<ServerLoginException> failure;

    /**
     * @param startup sends the StartupMessage (on the event loop, once the channel is ready for it)
     * @param failure fails the login with a message naming the server
     */
    ServerTlsRequest(
            TlsContexts tls,
            Backend backend,
            Runnable startup,
            Consumer<ServerLoginException> failure) {
        this.tls = tls;
        this.backend = backend;
        this.startup = startup;
        this.failure = failure;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (!in.isReadable()) {
            return;
        }
        byte answer = in.readByte();
        switch (answer) {
            case 'S' -> {
                if (in.isReadable()) {
                    // Bytes a man in the middle could have put there (CVE-2021-23222).
                    fail("received unencrypted data after the SSL response");
                    return;
                }
                SslHandler handler =
                        tls.newServerHandler(ctx.alloc(), backend.host(), backend.port());
                handler.handshakeFuture()
                        .addListener(
                                f -> {
                                    if (f.isSuccess()) {
                                        startup.run();
                                    } else {
                                        fail("TLS handshake failed: " + describe(f.cause()));
                                    }
                                });
                ctx.pipeline().replace(this, "tls", handler);
            }
            case 'N' -> {
                if (tls.serverMode().requiresTls()) {
                    fail(
                            "the server does not accept TLS (server_tls_sslmode = "
                                    + tls.serverMode()
                                    + ")");
                    return;
                }
                ctx.pipeline().remove(this);
                startup.run();
            }
            default ->
                    // 'E': an ErrorResponse (a server out of connection slots answers so before
                    // it reads the request); libpq gives up there too.
                    fail(
                            "the server answered the SSLRequest with "
                                    + (answer == 'E' ? "an error" : "byte " + (answer & 0xff)));
        }
    }

    private void fail(String why) {
        failure.accept(new ServerLoginException("server " + backend + ": " + why));
    }

    private static String describe(Throwable t) {
        Throwable root = t.getCause() != null ? t.getCause() : t;
        String m = root.getMessage();
        return m == null ? root.getClass().getSimpleName() : m;
    }
}
