package io.pgrelay.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The untyped packets a connection starts with: StartupMessage and the three requests that share
 * its framing (SSLRequest, GSSENCRequest, CancelRequest), told apart by the code where the protocol
 * version would be.
 */
public final class StartupMessage {

    public static final int PROTOCOL_3_0 = 3 << 16;
    public static final int CANCEL_REQUEST_CODE = 80877102;
    public static final int SSL_REQUEST_CODE = 80877103;
    public static final int GSSENC_REQUEST_CODE = 80877104;

    private StartupMessage() {}

    /** The version or request code of an untyped packet (length word first). */
    public static int code(ByteBuf packet) {
        return packet.getInt(packet.readerIndex() + 4);
    }

    /** The name/value pairs of a StartupMessage, in the order sent. */
    public static Map<String, String> parameters(ByteBuf packet) {
        ByteBuf body = packet.duplicate();
        body.skipBytes(8);
        Map<String, String> params = new LinkedHashMap<>();
        while (body.isReadable()) {
            String name = CStrings.read(body);
            if (name.isEmpty()) {
                if (body.isReadable()) {
                    break; // bytes after the terminator: refused, as PostgreSQL does
                }
                return params;
            }
            if (!body.isReadable()) {
                break;
            }
            params.put(name, CStrings.read(body));
        }
        throw new ProtocolException(
                "invalid startup packet layout: expected terminator as last byte");
    }

    /** Encodes a protocol 3.0 StartupMessage, as pgrelay sends it to servers. */
    public static ByteBuf encode(ByteBufAllocator alloc, Map<String, String> params) {
        int length = 8 + 1;
        for (Map.Entry<String, String> e : params.entrySet()) {
            length += CStrings.size(e.getKey()) + CStrings.size(e.getValue());
        }
        ByteBuf buf = alloc.buffer(length);
        buf.writeInt(length).writeInt(PROTOCOL_3_0);
        for (Map.Entry<String, String> e : params.entrySet()) {
            CStrings.write(buf, e.getKey());
            CStrings.write(buf, e.getValue());
        }
        buf.writeByte(0);
        return buf;
    }

    /** SSLRequest: asks the server to switch to TLS ('S') or not ('N'). */
    public static ByteBuf sslRequest(ByteBufAllocator alloc) {
        return alloc.buffer(8).writeInt(8).writeInt(SSL_REQUEST_CODE);
    }

    /** CancelRequest: process ID and secret key of the backend to cancel. */
    public static ByteBuf encodeCancelRequest(
            ByteBufAllocator alloc, int processId, int secretKey) {
        return alloc.buffer(16)
                .writeInt(16)
                .writeInt(CANCEL_REQUEST_CODE)
                .writeInt(processId)
                .writeInt(secretKey);
    }
}
