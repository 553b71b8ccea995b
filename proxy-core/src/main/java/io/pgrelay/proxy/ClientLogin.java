package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.handler.ssl.SslHandler;
import io.pgrelay.admin.AdminSession;
import io.pgrelay.auth.Secret;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.config.TlsSettings;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.protocol.LogSafe;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.ProtocolException;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.routing.Role;
import io.pgrelay.session.StartupParser;
import io.pgrelay.tls.ChannelBinding;
import io.pgrelay.tls.TlsContexts;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A client's way in: its first packet (encryption requests, CancelRequest, StartupMessage), the
 * password exchange, and the greeting once it is in (ParameterStatus, BackendKeyData,
 * ReadyForQuery). Runs on the client's event loop; the session owns the state and is told what
 * happened.
 */
final class ClientLogin {

    /** What the login tells its session. */
    interface Session {
        /** The StartupMessage is accepted; the password exchange starts. */
        void started(StartupParser.Startup startup);

        /** The password was right. */
        void authenticated();

        /** Refused, with this FATAL. */
        void refused(ErrorResponse error);

        /** Done without a reply (a CancelRequest, a packet PostgreSQL would not answer). */
        void closed();

        /** The port's role: where an auth_query lookup for this client runs. */
        Role role();

        /** The client is gone or refused (a timeout, a disconnect): nothing more is sent. */
        boolean ended();
    }

    private static final Logger log = LoggerFactory.getLogger(ClientLogin.class);
    private static final ByteBuf ENCRYPTION_REFUSED =
            Unpooled.unreleasableBuffer(Unpooled.directBuffer(1).writeByte('N')).asReadOnly();
    private static final ByteBuf ENCRYPTION_ACCEPTED =
            Unpooled.unreleasableBuffer(Unpooled.directBuffer(1).writeByte('S')).asReadOnly();

    /** The SslHandler's name after an SSLRequest (a direct handshake's is {@link DirectTls}'s). */
    static final String TLS_HANDLER_NAME = "tls";

    private final SessionServices relay;
    private final Channel channel;
    private final Session session;
    private boolean sslAnswered;
    private boolean gssAnswered;
    private String user;

    /** The password exchange, between the StartupMessage and its outcome. */
    private PasswordExchange exchange;

    ClientLogin(SessionServices relay, Channel channel, Session session) {
        this.relay = relay;
        this.channel = channel;
        this.session = session;
    }

    /** The untyped packet a connection starts with (or the one after an encryption request). */
    void onStartupPacket(ByteBuf packet) {
        SslHandler tls = channel.pipeline().get(SslHandler.class);
        if (tls != null
                && channel.pipeline().get(DirectTls.HANDLER_NAME) == tls
                && !TlsContexts.ALPN_POSTGRESQL.equals(tls.applicationProtocol())) {
            // As PostgreSQL 17: ALPN is how a direct handshake says it is meant for PostgreSQL.
            log.info(
                    "client {}: direct TLS connection without ALPN \"{}\"; closing",
                    channel.remoteAddress(),
                    TlsContexts.ALPN_POSTGRESQL);
            session.closed();
            return;
        }
        // Inside TLS neither encryption request may come again (PostgreSQL counts both done).
        StartupParser.Packet parsed =
                StartupParser.parse(
                        packet,
                        sslAnswered || tls != null,
                        gssAnswered || tls != null,
                        relay.config().ignoreStartupParameters());
        if (parsed instanceof StartupParser.EncryptionRequest request) {
            sslAnswered |= request.ssl();
            gssAnswered |= !request.ssl();
            TlsContexts contexts = relay.tls();
            if (!request.ssl() || !contexts.acceptsClients()) {
                // GSS encryption is not offered, TLS only when configured: 'N' and the client
                // goes on in the clear (or gives up, if it insists).
                channel.writeAndFlush(ENCRYPTION_REFUSED.duplicate());
                return;
            }
            if (channel.pipeline().get(FrameDecoder.class).pendingBytes() > 0) {
                session.refused(
                        ErrorResponse.fatal(
                                SqlState.PROTOCOL_VIOLATION,
                                "received unencrypted data after SSL request"));
                return;
            }
            // 'S' leaves in plain text; the handler goes in front only after it was written.
            channel.writeAndFlush(ENCRYPTION_ACCEPTED.duplicate());
            channel.pipeline()
                    .addFirst(TLS_HANDLER_NAME, contexts.newClientHandler(channel.alloc()));
            return;
        }
        if (parsed instanceof StartupParser.CancelRequest cancel) {
            if (cancel.wellFormed()) {
                relay.cancelKeys().cancel(cancel.processId(), cancel.secretKey());
            }
            session.closed();
            return;
        }
        if (relay.isShuttingDown()) {
            // Checked after CancelRequest: clients finishing their transactions may still cancel.
            session.refused(
                    ErrorResponse.fatal(SqlState.CANNOT_CONNECT_NOW, "pgrelay is shutting down"));
            return;
        }
        channel.pipeline().get(FrameDecoder.class).typedPhase();
        if (parsed instanceof StartupParser.Refused refused) {
            negotiate(refused.negotiation());
            session.refused(refused.error());
            return;
        }
        StartupParser.Startup startup = (StartupParser.Startup) parsed;
        negotiate(startup.negotiation());
        TlsSettings.Mode mode = relay.tls().clientMode();
        if (tls == null && mode.requiresTls()) {
            session.refused(
                    ErrorResponse.fatal(
                            SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
                            "pgrelay accepts only TLS connections (client_tls_sslmode = "
                                    + mode
                                    + "): connect with sslmode=require or stronger"));
            return;
        }
        user = startup.user();
        if (!startup.isConsole() && relay.isDisabled(startup.database())) {
            session.refused(
                    ErrorResponse.fatal(
                            SqlState.OBJECT_NOT_IN_PREREQUISITE_STATE,
                            "database \""
                                    + startup.database()
                                    + "\" does not allow connections (DISABLE)"));
            return;
        }
        session.started(startup);
        Optional<Secret> listed = relay.credentials().listed(user);
        AuthQuery authQuery = relay.authQuery();
        if (listed.isPresent() || startup.isConsole() || !authQuery.enabled()) {
            startExchange(listed.orElse(null));
            return;
        }
        // Not in auth_file: auth_query knows. The exchange starts when it answers, on this loop;
        // the client has nothing to send until then, and client_login_timeout still runs.
        authQuery
                .secret(startup.database(), user, session.role())
                .whenComplete(
                        (secret, error) ->
                                channel.eventLoop().execute(() -> onLookedUp(secret, error)));
    }

    private void onLookedUp(Optional<Secret> secret, Throwable error) {
        if (session.ended()) {
            return;
        }
        if (error == null) {
            // No such role gets the same exchange as a wrong password (ScramServer.mock).
            startExchange(secret.orElse(null));
            return;
        }
        Throwable cause = AuthQuery.cause(error);
        // The cause is in AuthQuery's WARN (once per lookup, not per client waiting on it).
        log.info(
                "client {}: login of user {} refused: auth_query lookup failed",
                channel.remoteAddress(),
                LogSafe.quote(user));
        session.refused(
                ErrorResponse.fatal(
                        cause instanceof AuthQueryException e
                                ? e.sqlState()
                                : SqlState.CONNECTION_FAILURE,
                        "user lookup (auth_query) failed for user \""
                                + user
                                + "\"; the pgrelay log says why"));
    }

    private void startExchange(Secret secret) {
        SslHandler tls = channel.pipeline().get(SslHandler.class);
        exchange =
                new PasswordExchange(
                        user,
                        secret,
                        relay.credentials(),
                        tls == null
                                ? null
                                : ChannelBinding.ofLocalCertificate(tls.engine().getSession()));
        onStep(exchange.start(relay.config().authType(), channel.alloc()));
    }

    private void negotiate(StartupParser.Negotiation negotiation) {
        if (negotiation != null) {
            channel.write(
                    Messages.negotiateProtocolVersion(
                            channel.alloc(),
                            negotiation.newestMinor(),
                            negotiation.unrecognizedOptions()));
        }
    }

    /** A PasswordMessage (or SASL response) while the exchange runs. */
    void onPasswordMessage(ByteBuf frame) {
        if (exchange == null) {
            // Sent before any Authentication request (while auth_query runs).
            throw new ProtocolException("unexpected message before authentication request");
        }
        onStep(exchange.onPasswordMessage(frame, channel.alloc()));
    }

    private void onStep(PasswordExchange.Step step) {
        if (step.reply() != null) {
            channel.write(step.reply());
        }
        switch (step.outcome()) {
            case CONTINUE -> channel.flush();
            case SUCCEEDED -> {
                // The exchange is over: an idle client should not keep its SCRAM state alive.
                exchange = null;
                session.authenticated();
            }
            case FAILED -> {
                log.info(
                        "client {}: password authentication failed for user {}: {}",
                        channel.remoteAddress(),
                        LogSafe.quote(user),
                        LogSafe.escape(step.failure(), 300));
                session.refused(
                        ErrorResponse.fatal(
                                SqlState.INVALID_PASSWORD,
                                "password authentication failed for user \"" + user + "\""));
            }
        }
    }

    /**
     * The admin console for a console user (admin_users, stats_users): greeted, ready for its
     * commands; null when the user may not use it (refused).
     */
    AdminSession openConsole(StartupParser.Startup startup) {
        ProxyConfig config = relay.config();
        boolean mayControl = config.adminUsers().contains(user);
        if (!mayControl && !config.statsUsers().contains(user)) {
            session.refused(
                    ErrorResponse.fatal(
                            SqlState.INSUFFICIENT_PRIVILEGE,
                            "user \""
                                    + user
                                    + "\" is not allowed to use the admin console"
                                    + " (admin_users, stats_users)"));
            return null;
        }
        greetConsole(startup);
        return relay.console().open(mayControl, channel);
    }

    /** The admin console's greeting: fixed values, as PgBouncer's console sends. */
    private void greetConsole(StartupParser.Startup startup) {
        Map<String, String> greeting = new LinkedHashMap<>();
        greeting.put("server_version", "15.0");
        greeting.put("server_encoding", "UTF8");
        greeting.put(
                "client_encoding", startup.requested().getOrDefault("client_encoding", "UTF8"));
        greeting.put("DateStyle", "ISO, MDY");
        greeting.put("TimeZone", "UTC");
        greeting.put("integer_datetimes", "on");
        greeting.put("standard_conforming_strings", "on");
        greeting.put("application_name", startup.applicationName());
        greet(greeting);
    }

    /** ParameterStatus for each value, in order. */
    void greet(Map<String, String> values) {
        values.forEach((k, v) -> channel.write(Messages.parameterStatus(channel.alloc(), k, v)));
    }

    /** The end of the greeting: the cancel key and the first ReadyForQuery. */
    void ready(CancelKeys.Key key) {
        channel.write(Messages.backendKeyData(channel.alloc(), key.processId(), key.secretKey()));
        channel.write(Messages.readyForQueryIdle());
        channel.flush();
    }
}
