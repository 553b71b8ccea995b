package io.pgrelay.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import java.nio.charset.StandardCharsets;

/** Null-terminated UTF-8 strings, the protocol's String type. */
public final class CStrings {

    private CStrings() {}

    /** Reads a string ending in a zero byte and moves past the terminator. */
    public static String read(ByteBuf buf) {
        int start = buf.readerIndex();
        int end = buf.indexOf(start, buf.writerIndex(), (byte) 0);
        if (end < 0) {
            throw new ProtocolException("invalid string in message: missing terminator");
        }
        String s = buf.toString(start, end - start, StandardCharsets.UTF_8);
        buf.readerIndex(end + 1);
        return s;
    }

    public static void write(ByteBuf buf, String s) {
        ByteBufUtil.writeUtf8(buf, s);
        buf.writeByte(0);
    }

    /** Bytes {@link #write} will take, for sizing buffers exactly. */
    public static int size(String s) {
        return ByteBufUtil.utf8Bytes(s) + 1;
    }
}
