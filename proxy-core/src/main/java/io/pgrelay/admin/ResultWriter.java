package io.pgrelay.admin;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufUtil;
import io.pgrelay.protocol.CStrings;
import io.pgrelay.protocol.Messages;
import java.util.List;
import java.util.function.Consumer;

/**
 * Encodes the console's backend messages into one buffer per batch and hands it on at {@link
 * #flush()}, so a result set of any size is one write. Messages are framed in place: the length
 * word is written as a placeholder and filled in when the body is done.
 */
final class ResultWriter {

    /** Column types, as PgBouncer's type letters: s, i, q, N. */
    enum PgType {
        TEXT(25, -1),
        INT4(23, 4),
        INT8(20, 8),
        NUMERIC(1700, -1);

        final int oid;
        final short size;

        PgType(int oid, int size) {
            this.oid = oid;
            this.size = (short) size;
        }
    }

    record Field(String name, PgType type) {}

    static final short TEXT_FORMAT = 0;
    static final short BINARY_FORMAT = 1;

    private final ByteBufAllocator alloc;
    private final Consumer<ByteBuf> out;
    private ByteBuf pending;

    ResultWriter(ByteBufAllocator alloc, Consumer<ByteBuf> out) {
        this.alloc = alloc;
        this.out = out;
    }

    /**
     * Result format of a column from Bind's format codes: none = all text, one = for all columns.
     */
    static short format(short[] formats, int column) {
        if (formats == null || formats.length == 0) {
            return TEXT_FORMAT;
        }
        return formats.length == 1 ? formats[0] : formats[column];
    }

    void rowDescription(List<Field> fields, short[] formats) {
        int at = begin(Messages.ROW_DESCRIPTION);
        pending.writeShort(fields.size());
        for (int i = 0; i < fields.size(); i++) {
            Field f = fields.get(i);
            CStrings.write(pending, f.name());
            pending.writeInt(0).writeShort(0); // no table, no column number
            pending.writeInt(f.type().oid).writeShort(f.type().size).writeInt(-1);
            pending.writeShort(format(formats, i));
        }
        end(at);
    }

    void dataRow(List<Field> fields, Object[] values, short[] formats) {
        int at = begin(Messages.DATA_ROW);
        pending.writeShort(values.length);
        for (int i = 0; i < values.length; i++) {
            Object v = values[i];
            if (v == null) {
                pending.writeInt(-1);
            } else if (format(formats, i) == BINARY_FORMAT) {
                writeBinary(fields.get(i).type(), v);
            } else {
                int lengthAt = pending.writerIndex();
                pending.writeInt(0);
                pending.setInt(lengthAt, ByteBufUtil.writeUtf8(pending, v.toString()));
            }
        }
        end(at);
    }

    private void writeBinary(PgType type, Object v) {
        switch (type) {
            case INT4 -> pending.writeInt(4).writeInt(((Number) v).intValue());
            case INT8 -> pending.writeInt(8).writeLong(((Number) v).longValue());
            case NUMERIC -> writeNumeric(pending, ((Number) v).longValue());
            case TEXT -> {
                int lengthAt = pending.writerIndex();
                pending.writeInt(0);
                pending.setInt(lengthAt, ByteBufUtil.writeUtf8(pending, v.toString()));
            }
        }
    }

    /**
     * An integral numeric in binary form (length word included): ndigits, weight, sign and display
     * scale, then base-10000 digits, most significant first, trailing zero digits dropped as
     * PostgreSQL's numeric_send does.
     */
    static void writeNumeric(ByteBuf buf, long value) {
        String decimal = Long.toString(value);
        String digits = value < 0 ? decimal.substring(1) : decimal;
        int groups = (digits.length() + 3) / 4;
        short[] base10000 = new short[groups];
        int end = digits.length();
        for (int g = groups - 1; g >= 0; g--) {
            int start = Math.max(0, end - 4);
            base10000[g] = Short.parseShort(digits.substring(start, end));
            end = start;
        }
        int ndigits = groups;
        while (ndigits > 0 && base10000[ndigits - 1] == 0) {
            ndigits--;
        }
        int weight = ndigits == 0 ? 0 : groups - 1;
        buf.writeInt(8 + 2 * ndigits)
                .writeShort(ndigits)
                .writeShort(weight)
                .writeShort(value < 0 ? 0x4000 : 0)
                .writeShort(0);
        for (int i = 0; i < ndigits; i++) {
            buf.writeShort(base10000[i]);
        }
    }

    void commandComplete(String tag) {
        int at = begin(Messages.COMMAND_COMPLETE);
        CStrings.write(pending, tag);
        end(at);
    }

    void readyForQuery() {
        int at = begin(Messages.READY_FOR_QUERY);
        pending.writeByte(Messages.IDLE); // the console has no transactions
        end(at);
    }

    void emptyQueryResponse() {
        end(begin(Messages.EMPTY_QUERY_RESPONSE));
    }

    void parseComplete() {
        end(begin(Messages.PARSE_COMPLETE));
    }

    void bindComplete() {
        end(begin(Messages.BIND_COMPLETE));
    }

    void closeComplete() {
        end(begin(Messages.CLOSE_COMPLETE));
    }

    void noData() {
        end(begin(Messages.NO_DATA));
    }

    void portalSuspended() {
        end(begin(Messages.PORTAL_SUSPENDED));
    }

    /** ParameterDescription: console statements never take parameters. */
    void noParameters() {
        int at = begin(Messages.PARAMETER_DESCRIPTION);
        pending.writeShort(0);
        end(at);
    }

    void error(String severity, String sqlState, String message) {
        fields(Messages.ERROR_RESPONSE, severity, sqlState, message, null);
    }

    void notice(String message, String detail) {
        fields(Messages.NOTICE_RESPONSE, "NOTICE", "00000", message, detail);
    }

    private void fields(
            byte type, String severity, String sqlState, String message, String detail) {
        int at = begin(type);
        field('S', severity);
        field('V', severity);
        field('C', sqlState);
        field('M', message);
        if (detail != null) {
            field('D', detail);
        }
        pending.writeByte(0);
        end(at);
    }

    private void field(char code, String value) {
        pending.writeByte(code);
        CStrings.write(pending, value);
    }

    /** Hands what was written since the last flush to the output, if anything. */
    void flush() {
        ByteBuf b = pending;
        pending = null;
        if (b != null) {
            out.accept(b);
        }
    }

    /** Drops what was written since the last flush (the client is gone). */
    void discard() {
        if (pending != null) {
            pending.release();
            pending = null;
        }
    }

    private int begin(byte type) {
        if (pending == null) {
            pending = alloc.buffer(256);
        }
        pending.writeByte(type);
        int lengthAt = pending.writerIndex();
        pending.writeInt(0);
        return lengthAt;
    }

    private void end(int lengthAt) {
        pending.setInt(lengthAt, pending.writerIndex() - lengthAt);
    }
}
