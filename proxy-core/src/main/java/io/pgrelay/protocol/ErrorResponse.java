package io.pgrelay.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * ErrorResponse ('E'), decoded only where pgrelay must act on a server error (login failures, a
 * FATAL before the server closes) and built for errors pgrelay reports itself. Fields keep their
 * protocol codes ('S' severity, 'V' non-localized severity, 'C' SQLSTATE, 'M' message, 'D' detail,
 * 'H' hint, ...) and their order.
 */
public record ErrorResponse(Map<Character, String> fields) {

    public static final byte TYPE = 'E';

    public ErrorResponse {
        fields = Map.copyOf(new LinkedHashMap<>(fields));
    }

    public static ErrorResponse of(String severity, String sqlState, String message) {
        Map<Character, String> f = new LinkedHashMap<>();
        f.put('S', severity);
        f.put('V', severity);
        f.put('C', sqlState);
        f.put('M', message);
        return new ErrorResponse(f);
    }

    public static ErrorResponse error(String sqlState, String message) {
        return of("ERROR", sqlState, message);
    }

    public static ErrorResponse fatal(String sqlState, String message) {
        return of("FATAL", sqlState, message);
    }

    /** Decodes a whole frame (type byte included) without consuming it. */
    public static ErrorResponse decode(ByteBuf frame) {
        ByteBuf body = frame.duplicate();
        body.skipBytes(5);
        Map<Character, String> f = new LinkedHashMap<>();
        while (body.isReadable()) {
            byte code = body.readByte();
            if (code == 0) {
                break;
            }
            f.put((char) code, CStrings.read(body));
        }
        return new ErrorResponse(f);
    }

    public String severity() {
        return fields.getOrDefault('V', fields.getOrDefault('S', "ERROR"));
    }

    public String sqlState() {
        return fields.getOrDefault('C', SqlState.INTERNAL_ERROR);
    }

    public String message() {
        return fields.getOrDefault('M', "");
    }

    public boolean isFatal() {
        String s = severity();
        return s.equals("FATAL") || s.equals("PANIC");
    }

    /** The same error with another severity, e.g. a server's FATAL reported as a client's ERROR. */
    public ErrorResponse withSeverity(String severity) {
        Map<Character, String> f = new LinkedHashMap<>();
        f.put('S', severity);
        f.put('V', severity);
        fields.forEach(
                (k, v) -> {
                    if (k != 'S' && k != 'V') {
                        f.put(k, v);
                    }
                });
        return new ErrorResponse(f);
    }

    public ByteBuf encode(ByteBufAllocator alloc) {
        return encode(alloc, TYPE);
    }

    ByteBuf encode(ByteBufAllocator alloc, byte type) {
        int length = 4 + 1;
        // Severity, SQLSTATE and message first, in the order PostgreSQL sends them.
        for (Map.Entry<Character, String> e : ordered().entrySet()) {
            length += 1 + CStrings.size(e.getValue());
        }
        ByteBuf buf = alloc.buffer(1 + length);
        buf.writeByte(type).writeInt(length);
        for (Map.Entry<Character, String> e : ordered().entrySet()) {
            buf.writeByte(e.getKey());
            CStrings.write(buf, e.getValue());
        }
        buf.writeByte(0);
        return buf;
    }

    private Map<Character, String> ordered() {
        Map<Character, String> o = new LinkedHashMap<>();
        for (char c : new char[] {'S', 'V', 'C', 'M'}) {
            if (fields.containsKey(c)) {
                o.put(c, fields.get(c));
            }
        }
        fields.forEach(o::putIfAbsent);
        return o;
    }

    @Override
    public String toString() {
        return severity() + " " + sqlState() + " " + message();
    }
}
