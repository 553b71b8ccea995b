package io.pgrelay.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The name of every message type, and encoders for the small messages pgrelay writes itself, named
 * as in the protocol documentation ("Message Formats"). Relayed messages never pass through here;
 * {@link MessageFields} reads the few that pgrelay looks into.
 */
public final class Messages {

    // Every message type, named as in "Message Formats". Frontend and backend types share
    // letters ('D' is Describe from a client, DataRow from a server): the direction decides.

    // Backend (server to client).
    public static final byte AUTHENTICATION = 'R';
    public static final byte BACKEND_KEY_DATA = 'K';
    public static final byte BIND_COMPLETE = '2';
    public static final byte CLOSE_COMPLETE = '3';
    public static final byte COMMAND_COMPLETE = 'C';
    public static final byte COPY_BOTH_RESPONSE = 'W';
    public static final byte COPY_IN_RESPONSE = 'G';
    public static final byte COPY_OUT_RESPONSE = 'H';
    public static final byte DATA_ROW = 'D';
    public static final byte EMPTY_QUERY_RESPONSE = 'I';
    public static final byte ERROR_RESPONSE = 'E';
    public static final byte FUNCTION_CALL_RESPONSE = 'V';
    public static final byte NEGOTIATE_PROTOCOL_VERSION = 'v';
    public static final byte NO_DATA = 'n';
    public static final byte NOTICE_RESPONSE = 'N';
    public static final byte NOTIFICATION_RESPONSE = 'A';
    public static final byte PARAMETER_DESCRIPTION = 't';
    public static final byte PARAMETER_STATUS = 'S';
    public static final byte PARSE_COMPLETE = '1';
    public static final byte PORTAL_SUSPENDED = 's';
    public static final byte READY_FOR_QUERY = 'Z';
    public static final byte ROW_DESCRIPTION = 'T';

    // Frontend (client to server).
    public static final byte BIND = 'B';
    public static final byte CLOSE = 'C';
    public static final byte DESCRIBE = 'D';
    public static final byte EXECUTE = 'E';
    public static final byte FLUSH = 'H';
    public static final byte FUNCTION_CALL = 'F';
    public static final byte PARSE = 'P';

    /** PasswordMessage, and the SASL and GSS responses, which share its type. */
    public static final byte PASSWORD_MESSAGE = 'p';

    public static final byte QUERY = 'Q';
    public static final byte SYNC = 'S';
    public static final byte TERMINATE = 'X';

    // Both directions.
    public static final byte COPY_DATA = 'd';
    public static final byte COPY_DONE = 'c';

    /** Frontend only. */
    public static final byte COPY_FAIL = 'f';

    /** Describe and Close: the target is a prepared statement or a portal. */
    public static final byte TARGET_STATEMENT = 'S';

    public static final byte TARGET_PORTAL = 'P';

    // Authentication request codes.
    public static final int AUTH_OK = 0;
    public static final int AUTH_CLEARTEXT_PASSWORD = 3;
    public static final int AUTH_MD5_PASSWORD = 5;
    public static final int AUTH_SASL = 10;
    public static final int AUTH_SASL_CONTINUE = 11;
    public static final int AUTH_SASL_FINAL = 12;

    /** Transaction status byte of ReadyForQuery. */
    public static final byte IDLE = 'I';

    public static final byte IN_TRANSACTION = 'T';
    public static final byte FAILED_TRANSACTION = 'E';

    private static final ByteBuf READY_IDLE =
            Unpooled.unreleasableBuffer(
                            Unpooled.directBuffer(6)
                                    .writeByte(READY_FOR_QUERY)
                                    .writeInt(5)
                                    .writeByte(IDLE))
                    .asReadOnly();
    private static final ByteBuf AUTH_OK_MESSAGE =
            Unpooled.unreleasableBuffer(
                            Unpooled.directBuffer(9)
                                    .writeByte(AUTHENTICATION)
                                    .writeInt(8)
                                    .writeInt(AUTH_OK))
                    .asReadOnly();

    private static final ByteBuf PARSE_COMPLETE_MESSAGE =
            Unpooled.unreleasableBuffer(
                            Unpooled.directBuffer(5).writeByte(PARSE_COMPLETE).writeInt(4))
                    .asReadOnly();
    private static final ByteBuf CLOSE_COMPLETE_MESSAGE =
            Unpooled.unreleasableBuffer(
                            Unpooled.directBuffer(5).writeByte(CLOSE_COMPLETE).writeInt(4))
                    .asReadOnly();

    private Messages() {}

    /** ReadyForQuery with status idle, as a shared read-only buffer (release is a no-op). */
    public static ByteBuf readyForQueryIdle() {
        return READY_IDLE.duplicate();
    }

    public static ByteBuf parseComplete() {
        return PARSE_COMPLETE_MESSAGE.duplicate();
    }

    public static ByteBuf closeComplete() {
        return CLOSE_COMPLETE_MESSAGE.duplicate();
    }

    public static ByteBuf authenticationOk() {
        return AUTH_OK_MESSAGE.duplicate();
    }

    public static ByteBuf authenticationCleartextPassword(ByteBufAllocator alloc) {
        return alloc.buffer(9)
                .writeByte(AUTHENTICATION)
                .writeInt(8)
                .writeInt(AUTH_CLEARTEXT_PASSWORD);
    }

    public static ByteBuf authenticationMd5Password(ByteBufAllocator alloc, byte[] salt) {
        return alloc.buffer(13)
                .writeByte(AUTHENTICATION)
                .writeInt(12)
                .writeInt(AUTH_MD5_PASSWORD)
                .writeBytes(salt, 0, 4);
    }

    public static ByteBuf authenticationSasl(ByteBufAllocator alloc, List<String> mechanisms) {
        int length = 4 + 4 + 1;
        for (String m : mechanisms) {
            length += CStrings.size(m);
        }
        ByteBuf buf =
                alloc.buffer(1 + length)
                        .writeByte(AUTHENTICATION)
                        .writeInt(length)
                        .writeInt(AUTH_SASL);
        mechanisms.forEach(m -> CStrings.write(buf, m));
        return buf.writeByte(0);
    }

    public static ByteBuf authenticationSaslContinue(ByteBufAllocator alloc, byte[] data) {
        return authenticationWithData(alloc, AUTH_SASL_CONTINUE, data);
    }

    public static ByteBuf authenticationSaslFinal(ByteBufAllocator alloc, byte[] data) {
        return authenticationWithData(alloc, AUTH_SASL_FINAL, data);
    }

    private static ByteBuf authenticationWithData(ByteBufAllocator alloc, int code, byte[] data) {
        return alloc.buffer(9 + data.length)
                .writeByte(AUTHENTICATION)
                .writeInt(8 + data.length)
                .writeInt(code)
                .writeBytes(data);
    }

    public static ByteBuf backendKeyData(ByteBufAllocator alloc, int processId, int secretKey) {
        return alloc.buffer(13)
                .writeByte(BACKEND_KEY_DATA)
                .writeInt(12)
                .writeInt(processId)
                .writeInt(secretKey);
    }

    public static ByteBuf parameterStatus(ByteBufAllocator alloc, String name, String value) {
        int length = 4 + CStrings.size(name) + CStrings.size(value);
        ByteBuf buf = alloc.buffer(1 + length).writeByte(PARAMETER_STATUS).writeInt(length);
        CStrings.write(buf, name);
        CStrings.write(buf, value);
        return buf;
    }

    /**
     * NegotiateProtocolVersion: the newest minor version supported and the options not recognized.
     */
    public static ByteBuf negotiateProtocolVersion(
            ByteBufAllocator alloc, int newestMinor, List<String> unrecognized) {
        int length = 4 + 4 + 4;
        for (String o : unrecognized) {
            length += CStrings.size(o);
        }
        ByteBuf buf =
                alloc.buffer(1 + length)
                        .writeByte(NEGOTIATE_PROTOCOL_VERSION)
                        .writeInt(length)
                        .writeInt(newestMinor)
                        .writeInt(unrecognized.size());
        unrecognized.forEach(o -> CStrings.write(buf, o));
        return buf;
    }

    public static ByteBuf query(ByteBufAllocator alloc, String sql) {
        int length = 4 + CStrings.size(sql);
        ByteBuf buf = alloc.buffer(1 + length).writeByte(QUERY).writeInt(length);
        CStrings.write(buf, sql);
        return buf;
    }

    /**
     * Parse of a named statement; {@code body} is everything after the name: the query string with
     * its terminator and the parameter-type section, as a client's Parse carries them.
     */
    public static ByteBuf parse(ByteBufAllocator alloc, String name, byte[] body) {
        int length = 4 + CStrings.size(name) + body.length;
        ByteBuf buf = alloc.buffer(1 + length).writeByte(PARSE).writeInt(length);
        CStrings.write(buf, name);
        return buf.writeBytes(body);
    }

    /**
     * One query in the extended protocol, in one buffer: Parse of the unnamed statement (parameter
     * types left to the server), Bind of {@code parameters} as text (null: NULL) to the unnamed
     * portal with text results, Execute of all rows, Sync. The parameters travel apart from the
     * query text, so no value can change what the query does.
     */
    public static ByteBuf extendedQuery(
            ByteBufAllocator alloc, String sql, List<String> parameters) {
        List<byte[]> values = new ArrayList<>(parameters.size());
        int valueBytes = 0;
        for (String p : parameters) {
            byte[] v = p == null ? null : p.getBytes(StandardCharsets.UTF_8);
            values.add(v);
            valueBytes += 4 + (v == null ? 0 : v.length);
        }
        int parseLength = 4 + 1 + CStrings.size(sql) + 2;
        int bindLength = 4 + 1 + 1 + 2 + 2 + valueBytes + 2;
        int executeLength = 4 + 1 + 4;
        ByteBuf buf = alloc.buffer(1 + parseLength + 1 + bindLength + 1 + executeLength + 5);
        buf.writeByte(PARSE).writeInt(parseLength).writeByte(0);
        CStrings.write(buf, sql);
        buf.writeShort(0);
        buf.writeByte(BIND).writeInt(bindLength).writeByte(0).writeByte(0);
        buf.writeShort(0).writeShort(values.size());
        for (byte[] v : values) {
            if (v == null) {
                buf.writeInt(-1);
            } else {
                buf.writeInt(v.length).writeBytes(v);
            }
        }
        buf.writeShort(0);
        buf.writeByte(EXECUTE).writeInt(executeLength).writeByte(0).writeInt(0);
        return buf.writeByte(SYNC).writeInt(4);
    }

    /** PasswordMessage ('p') carrying a null-terminated password or md5 response. */
    public static ByteBuf passwordMessage(ByteBufAllocator alloc, String password) {
        int length = 4 + CStrings.size(password);
        ByteBuf buf = alloc.buffer(1 + length).writeByte(PASSWORD_MESSAGE).writeInt(length);
        CStrings.write(buf, password);
        return buf;
    }

    public static ByteBuf saslInitialResponse(
            ByteBufAllocator alloc, String mechanism, byte[] data) {
        int length = 4 + CStrings.size(mechanism) + 4 + data.length;
        ByteBuf buf = alloc.buffer(1 + length).writeByte(PASSWORD_MESSAGE).writeInt(length);
        CStrings.write(buf, mechanism);
        return buf.writeInt(data.length).writeBytes(data);
    }

    public static ByteBuf saslResponse(ByteBufAllocator alloc, byte[] data) {
        return alloc.buffer(5 + data.length)
                .writeByte(PASSWORD_MESSAGE)
                .writeInt(4 + data.length)
                .writeBytes(data);
    }

    public static ByteBuf terminate(ByteBufAllocator alloc) {
        return alloc.buffer(5).writeByte(TERMINATE).writeInt(4);
    }

    /**
     * Where the typed message starting at {@code index} of {@code buf} ends (exclusive): the type
     * byte, then a length that counts itself and the body. For walking a run of messages.
     */
    public static int end(ByteBuf buf, int index) {
        return index + 1 + buf.getInt(index + 1);
    }

    /** The type byte of a typed frame. */
    public static byte type(ByteBuf frame) {
        return frame.getByte(frame.readerIndex());
    }
}
