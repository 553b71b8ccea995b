package io.pgrelay.protocol;

import io.netty.buffer.ByteBuf;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads the fields pgrelay looks at in the messages it relays, in place: each accessor takes the
 * buffer and the index of the message's type byte, copies nothing but the field it returns, and
 * leaves the buffer's indexes alone. The messages are framed already (the length word is trusted);
 * fields are named as in "Message Formats".
 *
 * <p>Frontend messages whose names pgrelay reads (Parse, Bind, Describe, Close) are checked first
 * with {@link MessageChecks#malformation}; reading an unchecked one may throw.
 */
public final class MessageFields {

    /** The type byte and the length word. */
    public static final int HEADER = 5;

    private MessageFields() {}

    /** ReadyForQuery: the transaction status ({@link Messages#IDLE}, 'T' or 'E'). */
    public static byte transactionStatus(ByteBuf buf, int index) {
        return buf.getByte(index + HEADER);
    }

    /** ParameterStatus: the parameter's name. */
    public static String parameterName(ByteBuf buf, int index) {
        return string(buf, index, index + HEADER);
    }

    /** ParameterStatus: the parameter's value. */
    public static String parameterValue(ByteBuf buf, int index) {
        return string(buf, index, stringEnd(buf, index, index + HEADER) + 1);
    }

    /**
     * CommandComplete: whether its tag is exactly {@code tag} (ASCII), compared without copying.
     */
    public static boolean commandTagIs(ByteBuf buf, int index, String tag) {
        int length = buf.getInt(index + 1) - 5; // the tag, without its terminating zero
        if (length != tag.length()) {
            return false;
        }
        for (int i = 0; i < length; i++) {
            if (buf.getByte(index + HEADER + i) != tag.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    /** BackendKeyData: the process ID of the backend. */
    public static int processId(ByteBuf buf, int index) {
        return buf.getInt(index + HEADER);
    }

    /** BackendKeyData: the secret key (protocol 3.0: four bytes). */
    public static int secretKey(ByteBuf buf, int index) {
        return buf.getInt(index + HEADER + 4);
    }

    /** Authentication: the request code ({@link Messages#AUTH_OK}, ...). */
    public static int authenticationCode(ByteBuf buf, int index) {
        return buf.getInt(index + HEADER);
    }

    /** A message's body (everything after the type and length), as a slice. */
    public static ByteBuf body(ByteBuf buf, int index) {
        return buf.slice(index + HEADER, Messages.end(buf, index) - index - HEADER);
    }

    /** DataRow: every column's value as text (null for NULL). */
    public static List<String> columns(ByteBuf buf, int index) {
        int count = buf.getShort(index + HEADER);
        List<String> values = new ArrayList<>(Math.max(0, count));
        int at = index + HEADER + 2;
        for (int i = 0; i < count; i++) {
            int length = buf.getInt(at);
            values.add(length < 0 ? null : buf.toString(at + 4, length, StandardCharsets.UTF_8));
            at += 4 + Math.max(0, length);
        }
        return values;
    }

    /** Parse: the prepared statement's name ("" for the unnamed one). */
    public static String parseStatementName(ByteBuf buf, int index) {
        return string(buf, index, index + HEADER);
    }

    /** Parse: where the query string starts (everything after the name). */
    public static int parseQueryStart(ByteBuf buf, int index) {
        return stringEnd(buf, index, index + HEADER) + 1;
    }

    /** Bind: where the source statement's name starts (after the portal name). */
    public static int bindStatementNameStart(ByteBuf buf, int index) {
        return stringEnd(buf, index, index + HEADER) + 1;
    }

    /** Bind: the source prepared statement's name. */
    public static String bindStatementName(ByteBuf buf, int index) {
        return string(buf, index, bindStatementNameStart(buf, index));
    }

    /** Bind: where the parameter formats start (everything after the statement name). */
    public static int bindParametersStart(ByteBuf buf, int index) {
        return stringEnd(buf, index, bindStatementNameStart(buf, index)) + 1;
    }

    /**
     * Describe and Close: what they are about, {@link Messages#TARGET_STATEMENT} or {@link
     * Messages#TARGET_PORTAL}.
     */
    public static byte target(ByteBuf buf, int index) {
        return buf.getByte(index + HEADER);
    }

    /** Describe and Close: the statement's or portal's name. */
    public static String targetName(ByteBuf buf, int index) {
        return string(buf, index, index + HEADER + 1);
    }

    /** The zero-terminated string at {@code from} of the message at {@code index}, as UTF-8. */
    private static String string(ByteBuf buf, int index, int from) {
        return buf.toString(from, stringEnd(buf, index, from) - from, StandardCharsets.UTF_8);
    }

    /** The index of the zero byte ending the string at {@code from}, within the message. */
    private static int stringEnd(ByteBuf buf, int index, int from) {
        int end = buf.indexOf(from, Messages.end(buf, index), (byte) 0);
        if (end < 0) {
            throw new ProtocolException("invalid string in message: missing terminator");
        }
        return end;
    }
}
