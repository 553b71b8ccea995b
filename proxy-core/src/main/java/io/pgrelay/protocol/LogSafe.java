package io.pgrelay.protocol;

/**
 * Renders strings a client chose (database and user names, application_name, server messages that
 * echo them) for a log line. Raw, such a string can forge log lines (a newline), drive a terminal
 * (ESC sequences), hide text (bidi overrides) or make every line that names it 9 kB long;
 * PostgreSQL itself cuts names at 63 bytes, a startup packet does not.
 *
 * <p>Escaped: backslash ({@code \\}), the double quote inside {@link #quote} ({@code \"}, so its
 * quotes cannot be faked), {@code \n \r \t}, every other C0 control, DEL and C1 control as {@code
 * \xNN}, and Unicode format characters and line/paragraph separators (U+200E, U+2028, U+202E,
 * U+FEFF...) as {@code \}{@code uNNNN}. The length cap counts characters of the input, before
 * escaping, and never splits a surrogate pair.
 */
public final class LogSafe {

    /** Characters of a name kept by {@link #quote(String)}. */
    public static final int NAME_LIMIT = 64;

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private LogSafe() {}

    /**
     * {@code "name"}, escaped, with {@code ...} after the quote when cut at {@value #NAME_LIMIT}
     * characters.
     */
    public static String quote(String s) {
        return quote(s, NAME_LIMIT);
    }

    /**
     * {@code "s"}, escaped, cut at {@code limit} characters (then followed by {@code ...}); null as
     * {@code null}.
     */
    public static String quote(String s, int limit) {
        if (s == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder(Math.min(s.length(), limit) + 8).append('"');
        boolean cut = append(out, s, limit, true);
        out.append('"');
        return cut ? out.append("...").toString() : out.toString();
    }

    /**
     * {@code s} escaped as {@link #quote} does, without quotes (so {@code "} stays), cut at {@code
     * limit} characters.
     */
    public static String escape(String s, int limit) {
        if (s == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder(Math.min(s.length(), limit) + 4);
        return append(out, s, limit, false) ? out.append("...").toString() : out.toString();
    }

    /** Appends the escaped first {@code limit} characters; true if {@code s} was longer. */
    private static boolean append(StringBuilder out, String s, int limit, boolean quoted) {
        int end = Math.min(s.length(), Math.max(0, limit));
        if (end < s.length() && end > 0 && Character.isHighSurrogate(s.charAt(end - 1))) {
            end--;
        }
        for (int i = 0; i < end; i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\\' -> out.append("\\\\");
                case '"' -> out.append(quoted ? "\\\"" : "\"");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
                        out.append("\\x").append(HEX[c >> 4]).append(HEX[c & 0xf]);
                    } else if (isInvisibleControl(c)) {
                        out.append("\\u")
                                .append(HEX[c >> 12])
                                .append(HEX[(c >> 8) & 0xf])
                                .append(HEX[(c >> 4) & 0xf])
                                .append(HEX[c & 0xf]);
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return end < s.length();
    }

    /** Format characters (bidi overrides, zero-width joiners, BOM) and the Unicode line breaks. */
    private static boolean isInvisibleControl(char c) {
        int type = Character.getType(c);
        return type == Character.FORMAT
                || type == Character.LINE_SEPARATOR
                || type == Character.PARAGRAPH_SEPARATOR;
    }
}
