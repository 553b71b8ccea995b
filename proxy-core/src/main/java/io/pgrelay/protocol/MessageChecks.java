package io.pgrelay.protocol;

import io.netty.buffer.ByteBuf;

/**
 * Checks the parts of a frontend message that pgrelay reads itself, before it reads them.
 *
 * <p>Most messages are relayed without a look and the server judges them. Parse, Bind, Describe and
 * Close of named statements are the exception in transaction mode: pgrelay reads the statement name
 * to rename it, and does so on the lease path, where an exception could leave a server connection
 * in two hands. So a message whose names run past its end is rejected here, with the words and
 * SQLSTATE (08P01) PostgreSQL uses, before anything else happens to it. The messages are
 * PostgreSQL's own, so a client sees what it would see without pgrelay.
 */
public final class MessageChecks {

    private static final String INVALID_STRING = "invalid string in message";

    private MessageChecks() {}

    /**
     * What is wrong with the Parse, Bind, Describe or Close message at {@code index} (its header
     * already framed), or null when every name pgrelay reads is a terminated string inside the
     * message. Other message types are not looked at: null.
     */
    public static String malformation(ByteBuf buf, int index) {
        int end = Messages.end(buf, index);
        int body = index + 5;
        return switch (buf.getByte(index)) {
            case Messages.PARSE -> stringEnd(buf, body, end) < 0 ? INVALID_STRING : null;
            case Messages.BIND -> {
                int portalEnd = stringEnd(buf, body, end);
                yield portalEnd < 0 || stringEnd(buf, portalEnd + 1, end) < 0
                        ? INVALID_STRING
                        : null;
            }
            case Messages.DESCRIBE, Messages.CLOSE -> {
                String message = buf.getByte(index) == Messages.DESCRIBE ? "DESCRIBE" : "CLOSE";
                if (body >= end) {
                    yield "no data left in message";
                }
                byte kind = buf.getByte(body);
                if (kind != 'S' && kind != 'P') {
                    yield "invalid " + message + " message subtype " + (kind & 0xff);
                }
                yield stringEnd(buf, body + 1, end) < 0 ? INVALID_STRING : null;
            }
            default -> null;
        };
    }

    /**
     * Index of the zero byte ending the string at {@code from}, or -1 if none before {@code end}.
     */
    private static int stringEnd(ByteBuf buf, int from, int end) {
        return from >= end ? -1 : buf.indexOf(from, end, (byte) 0);
    }

    /**
     * Whether the Flush or Close at {@code index} is malformed, so that the server will fail it
     * (and then skip every message up to the next Sync). A well-formed one cannot fail: a Close of
     * a name that does not exist is no error. Other message types: false.
     */
    public static boolean malformedFlushOrClose(ByteBuf buf, int index) {
        int end = Messages.end(buf, index);
        return switch (buf.getByte(index)) {
            case Messages.FLUSH -> end != index + 5;
            case Messages.CLOSE -> {
                int body = index + 5;
                if (body >= end) {
                    yield true;
                }
                byte kind = buf.getByte(body);
                // Well-formed: 'S' or 'P', then one string ending exactly at the message's end.
                yield (kind != 'S' && kind != 'P') || stringEnd(buf, body + 1, end) != end - 1;
            }
            default -> false;
        };
    }
}
