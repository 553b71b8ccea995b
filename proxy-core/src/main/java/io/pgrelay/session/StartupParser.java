package io.pgrelay.session;

import io.netty.buffer.ByteBuf;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.ProtocolException;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.protocol.StartupMessage;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Reads the untyped packet a connection starts with and says what it is: a request for encryption,
 * a CancelRequest, a StartupMessage pgrelay can serve, or one it refuses, with the error PostgreSQL
 * would send. No side effects: the session acts on the answer.
 */
public final class StartupParser {

    /** What the first packet (or the one after an answered encryption request) asks for. */
    public sealed interface Packet {}

    /** SSLRequest or GSSENCRequest, answered with 'N': the client goes on in the clear. */
    public record EncryptionRequest(boolean ssl) implements Packet {}

    /** CancelRequest; a malformed one (wrong length) is closed without a reply. */
    public record CancelRequest(boolean wellFormed, int processId, int secretKey)
            implements Packet {}

    /**
     * A StartupMessage for protocol 3.x.
     *
     * @param negotiation to send first when the client asked for a newer minor version or for
     *     protocol options ({@code _pq_.}) pgrelay does not know; null otherwise
     * @param requested the session parameters asked for, canonical names, {@code options -c}
     *     included
     */
    public record Startup(
            String user,
            String database,
            String applicationName,
            Map<String, String> requested,
            Negotiation negotiation)
            implements Packet {

        /** The admin console's database names, as PgBouncer's "pgbouncer" (and our own). */
        public boolean isConsole() {
            return database.equals("pgbouncer") || database.equals("pgrelay");
        }
    }

    /** NegotiateProtocolVersion's content: the newest minor version and the unknown options. */
    public record Negotiation(int newestMinor, List<String> unrecognizedOptions) {}

    /** A packet PostgreSQL would refuse: this FATAL, after the negotiation when there is one. */
    public record Refused(ErrorResponse error, Negotiation negotiation) implements Packet {}

    private StartupParser() {}

    /**
     * @param sslAnswered an SSLRequest was answered on this connection already (a second one is an
     *     unsupported protocol version, as PostgreSQL treats it)
     * @param gssAnswered the same for GSSENCRequest
     * @param ignored startup parameters the operator ignores (ignore_startup_parameters)
     */
    public static Packet parse(
            ByteBuf packet, boolean sslAnswered, boolean gssAnswered, Set<String> ignored) {
        int length = packet.readableBytes();
        int code = StartupMessage.code(packet);
        boolean ssl = code == StartupMessage.SSL_REQUEST_CODE && !sslAnswered;
        if (ssl || (code == StartupMessage.GSSENC_REQUEST_CODE && !gssAnswered)) {
            if (length != 8) {
                return refused(
                        "invalid length of "
                                + (ssl ? "SSLRequest" : "GSSENCRequest")
                                + ": "
                                + length);
            }
            return new EncryptionRequest(ssl);
        }
        if (code == StartupMessage.CANCEL_REQUEST_CODE) {
            int at = packet.readerIndex();
            return length == 16
                    ? new CancelRequest(true, packet.getInt(at + 8), packet.getInt(at + 12))
                    : new CancelRequest(false, 0, 0);
        }
        int major = code >>> 16;
        int minor = code & 0xffff;
        if (major != 3) {
            return new Refused(
                    ErrorResponse.fatal(
                            SqlState.FEATURE_NOT_SUPPORTED,
                            "unsupported frontend protocol "
                                    + major
                                    + "."
                                    + minor
                                    + ": server supports 3.0 to 3.0"),
                    null);
        }
        Map<String, String> params;
        try {
            params = StartupMessage.parameters(packet);
        } catch (ProtocolException e) {
            return refused(e.getMessage());
        }
        List<String> unrecognized =
                params.keySet().stream().filter(k -> k.startsWith("_pq_.")).toList();
        Negotiation negotiation =
                minor > 0 || !unrecognized.isEmpty() ? new Negotiation(0, unrecognized) : null;
        String user = params.get("user");
        if (user == null || user.isEmpty()) {
            return new Refused(
                    ErrorResponse.fatal(
                            SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
                            "no PostgreSQL user name specified in startup packet"),
                    negotiation);
        }
        String database = params.getOrDefault("database", "");
        String replication = params.get("replication");
        if (replication != null) {
            Boolean walSender =
                    replication.equals("database") ? Boolean.TRUE : parseBool(replication);
            if (walSender == null) {
                return new Refused(
                        ErrorResponse.fatal(
                                SqlState.INVALID_PARAMETER_VALUE,
                                "invalid value for parameter \"replication\": \""
                                        + replication
                                        + "\""),
                        negotiation);
            }
            if (walSender) {
                return new Refused(
                        ErrorResponse.fatal(
                                SqlState.FEATURE_NOT_SUPPORTED,
                                "replication connections are not supported by pgrelay"),
                        negotiation);
            }
        }
        Map<String, String> requested;
        try {
            requested = SessionParameters.requested(params, ignored);
        } catch (IllegalArgumentException e) {
            return new Refused(
                    ErrorResponse.fatal(SqlState.PROTOCOL_VIOLATION, e.getMessage()), negotiation);
        }
        return new Startup(
                user,
                database.isEmpty() ? user : database,
                params.getOrDefault("application_name", ""),
                requested,
                negotiation);
    }

    /**
     * A boolean as PostgreSQL's parse_bool reads it: true, false, yes, no (or a unique prefix of
     * them, any case), on, off (at least "of"), 1, 0; null for anything else.
     */
    static Boolean parseBool(String value) {
        String v = value.toLowerCase(Locale.ROOT);
        if (v.isEmpty()) {
            return null;
        }
        if ("true".startsWith(v) || "yes".startsWith(v) || v.equals("on") || v.equals("1")) {
            return Boolean.TRUE;
        }
        if ("false".startsWith(v)
                || "no".startsWith(v)
                || (v.length() >= 2 && "off".startsWith(v))
                || v.equals("0")) {
            return Boolean.FALSE;
        }
        return null;
    }

    private static Refused refused(String message) {
        return new Refused(ErrorResponse.fatal(SqlState.PROTOCOL_VIOLATION, message), null);
    }
}
