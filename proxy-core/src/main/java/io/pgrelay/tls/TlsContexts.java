package io.pgrelay.tls;

import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.SupportedCipherSuiteFilter;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.pgrelay.config.TlsSettings;
import java.util.Objects;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The TLS contexts pgrelay runs with: one for accepting clients, one for connecting to PostgreSQL.
 * Immutable; a RELOAD builds new ones from the files and swaps them in whole, so a file that does
 * not load leaves the running ones in place and connected clients keep their sessions.
 */
public final class TlsContexts {

    /** The ALPN protocol PostgreSQL 17 defines for its direct TLS handshake. */
    public static final String ALPN_POSTGRESQL = "postgresql";

    private static final Logger log = LoggerFactory.getLogger(TlsContexts.class);
    private static volatile boolean engineLogged;

    private final TlsSettings clientSettings;
    private final TlsSettings serverSettings;
    private final SslContext forClients;
    private final SslContext forServers;

    private TlsContexts(
            TlsSettings clientSettings,
            SslContext forClients,
            TlsSettings serverSettings,
            SslContext forServers) {
        this.clientSettings = clientSettings;
        this.serverSettings = serverSettings;
        this.forClients = forClients;
        this.forServers = forServers;
    }

    /**
     * Reads the certificate and key files of both sides.
     *
     * @throws TlsSetupException naming the setting and file that did not load, and why
     */
    public static TlsContexts build(TlsSettings client, TlsSettings server) {
        SslProvider provider = provider();
        SslContext forClients =
                client.mode() == TlsSettings.Mode.DISABLE
                        ? null
                        : acceptingContext(client, provider);
        SslContext forServers =
                server.mode() == TlsSettings.Mode.DISABLE
                        ? null
                        : connectingContext(server, provider);
        return new TlsContexts(client, forClients, server, forServers);
    }

    public TlsSettings.Mode clientMode() {
        return clientSettings.mode();
    }

    public TlsSettings.Mode serverMode() {
        return serverSettings.mode();
    }

    /** Whether clients may switch to TLS (client_tls_sslmode is not disable). */
    public boolean acceptsClients() {
        return forClients != null;
    }

    /** A handler for a client's connection (server side of the handshake); null when disabled. */
    public SslHandler newClientHandler(ByteBufAllocator alloc) {
        return forClients == null ? null : forClients.newHandler(alloc);
    }

    /** Whether server connections ask for TLS (server_tls_sslmode is not disable). */
    public boolean connectsWithTls() {
        return forServers != null;
    }

    /**
     * A handler for a connection to {@code host} (client side of the handshake): SNI names the
     * host, and verify-full checks the certificate against it as libpq does (DNS name or IP address
     * in the subjectAltName).
     */
    public SslHandler newServerHandler(ByteBufAllocator alloc, String host, int port) {
        SslHandler handler = Objects.requireNonNull(forServers).newHandler(alloc, host, port);
        if (serverSettings.mode() == TlsSettings.Mode.VERIFY_FULL) {
            SSLEngine engine = handler.engine();
            SSLParameters params = engine.getSSLParameters();
            params.setEndpointIdentificationAlgorithm("HTTPS");
            engine.setSSLParameters(params);
        }
        return handler;
    }

    private static SslContext acceptingContext(TlsSettings s, SslProvider provider) {
        KeyMaterial material =
                KeyMaterial.load(
                        "client_tls_cert_file", s.certFile(), "client_tls_key_file", s.keyFile());
        SslContextBuilder b =
                SslContextBuilder.forServer(material.key(), material.chain())
                        .sslProvider(provider)
                        .protocols(s.protocols())
                        // Offered, never insisted on: libpq before 17 and pgjdbc send no ALPN
                        // after an SSLRequest; a direct handshake without it is refused after
                        // the handshake (DirectTls), as PostgreSQL does.
                        .applicationProtocolConfig(
                                new ApplicationProtocolConfig(
                                        ApplicationProtocolConfig.Protocol.ALPN,
                                        ApplicationProtocolConfig.SelectorFailureBehavior
                                                .NO_ADVERTISE,
                                        ApplicationProtocolConfig.SelectedListenerFailureBehavior
                                                .ACCEPT,
                                        ALPN_POSTGRESQL));
        if (s.mode().verifiesPeer()) {
            b.clientAuth(ClientAuth.REQUIRE)
                    .trustManager(KeyMaterial.certificates("client_tls_ca_file", s.caFile()));
        } else {
            b.clientAuth(ClientAuth.NONE);
        }
        return finish(b, s, "client_tls");
    }

    private static SslContext connectingContext(TlsSettings s, SslProvider provider) {
        SslContextBuilder b =
                SslContextBuilder.forClient()
                        .sslProvider(provider)
                        .protocols(s.protocols())
                        // Netty 4.2 checks host names by default; only verify-full asks for it
                        // (newServerHandler), as libpq.
                        .endpointIdentificationAlgorithm(null);
        if (!s.mode().verifiesPeer()) {
            b.trustManager(InsecureTrustManagerFactory.INSTANCE);
        } else if (s.caFile() != null) {
            b.trustManager(KeyMaterial.certificates("server_tls_ca_file", s.caFile()));
        }
        if (s.certFile() != null) {
            KeyMaterial material =
                    KeyMaterial.load(
                            "server_tls_cert_file",
                            s.certFile(),
                            "server_tls_key_file",
                            s.keyFile());
            b.keyManager(material.key(), material.chain());
        }
        return finish(b, s, "server_tls");
    }

    private static SslContext finish(SslContextBuilder b, TlsSettings s, String prefix) {
        if (!s.ciphers().isEmpty()) {
            b.ciphers(s.ciphers(), SupportedCipherSuiteFilter.INSTANCE);
        }
        try {
            SslContext context = b.build();
            if (!s.ciphers().isEmpty() && context.cipherSuites().isEmpty()) {
                throw new TlsSetupException(
                        prefix + "_ciphers: none of " + s.ciphers() + " is supported");
            }
            return context;
        } catch (SSLException | IllegalArgumentException e) {
            throw new TlsSetupException(prefix + ": " + e.getMessage(), e);
        }
    }

    /** BoringSSL when netty-tcnative loads here, the JDK's engine otherwise; logged once. */
    private static SslProvider provider() {
        boolean openSsl = OpenSsl.isAvailable();
        if (!engineLogged) {
            engineLogged = true;
            if (openSsl) {
                log.info("TLS engine: {} (netty-tcnative)", OpenSsl.versionString());
            } else {
                log.info(
                        "TLS engine: the JDK's ({}; netty-tcnative did not load: {})",
                        Runtime.version(),
                        String.valueOf(OpenSsl.unavailabilityCause()));
            }
        }
        return openSsl ? SslProvider.OPENSSL : SslProvider.JDK;
    }

    /**
     * What SHOW CLIENTS and SHOW SERVERS print in their tls column, PgBouncer's way ("TLSv1.3/
     * TLS_AES_256_GCM_SHA384"); null for a plain-text connection or one still in its handshake.
     */
    public static String describe(Channel channel) {
        SslHandler tls = channel.pipeline().get(SslHandler.class);
        if (tls == null || !tls.handshakeFuture().isSuccess()) {
            return null;
        }
        SSLSession session = tls.engine().getSession();
        return session.getProtocol() + "/" + session.getCipherSuite();
    }
}
