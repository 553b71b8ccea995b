package io.pgrelay.session;

import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Reads the simplest, most common SET statements, so that the session check after them reads one
 * setting instead of all of them (pg_settings costs the server about 0.7 ms, current_setting() of
 * one name 0.05 ms), and SET LOCAL, SET TRANSACTION and set_config(..., true) need no check at all
 * (multi-tenant applications send one per transaction). Anything not understood returns "unknown"
 * and the check reads every setting, as before: this is an optimization, never a guess.
 */
final class SetStatements {

    /** SET LOCAL, SET TRANSACTION ...: nothing outlives the transaction. */
    static final String NOTHING_PERSISTS = "";

    /** SET name TO DEFAULT: a RESET, back to the client's startup value (read like one). */
    static final String TO_DEFAULT = "\0default";

    private static final Pattern NAME = Pattern.compile("[a-z_][a-z0-9_$.]*");

    /**
     * set_config calls whose is_local argument is the literal true, with a literal or parameter
     * name and value: their settings end with the transaction.
     */
    private static final Pattern LOCAL_SET_CONFIG =
            Pattern.compile(
                    "set_config\\s*\\(\\s*('[^']*'|\\$\\d+)\\s*,\\s*('[^']*'|\\$\\d+|null)\\s*,\\s*true\\s*\\)");

    private static final Pattern SET_CONFIG = Pattern.compile("set_config");

    private SetStatements() {}

    /**
     * The canonical name of the one setting a statement text changes for the session, {@link
     * #NOTHING_PERSISTS} when it changes none beyond its transaction, or null when the text is not
     * one simple SET statement (several statements, comments, quoted names, RESET, SET ROLE, SET
     * SESSION AUTHORIZATION...).
     */
    static String setName(byte[] text, int length) {
        String sql = new String(text, 0, length, StandardCharsets.ISO_8859_1).strip();
        while (sql.endsWith(";")) {
            sql = sql.substring(0, sql.length() - 1).strip();
        }
        if (sql.indexOf(';') >= 0 || sql.contains("--") || sql.contains("/*")) {
            return null;
        }
        String[] words = sql.toLowerCase(Locale.ROOT).split("\\s+", 4);
        if (words.length < 2 || !words[0].equals("set")) {
            return null;
        }
        int at = 1;
        switch (words[1]) {
            case "local", "transaction", "constraints":
                return NOTHING_PERSISTS;
            case "session":
                if (words.length < 3
                        || words[2].equals("authorization")
                        || words[2].equals("characteristics")) {
                    return null;
                }
                at = 2;
                break;
            case "time":
                return words.length > 2 && words[2].equals("zone") ? "TimeZone" : null;
            case "schema":
                return "search_path";
            case "names":
                return "client_encoding";
            default:
                break;
        }
        // name TO value, name = value, name=value
        String rest = sql.substring(indexOfWord(sql, at)).toLowerCase(Locale.ROOT);
        int end = 0;
        while (end < rest.length()
                && (Character.isLetterOrDigit(rest.charAt(end))
                        || rest.charAt(end) == '_'
                        || rest.charAt(end) == '$'
                        || rest.charAt(end) == '.')) {
            end++;
        }
        String name = rest.substring(0, end);
        String after = rest.substring(end).stripLeading();
        if (!NAME.matcher(name).matches()
                || name.equals("role")
                || name.equals("session_authorization")
                || !(after.startsWith("=")
                        || after.startsWith("to ")
                        || after.startsWith("to\t"))) {
            return null;
        }
        String value = after.substring(after.startsWith("=") ? 1 : 2).strip();
        if (value.equals("default")) {
            return TO_DEFAULT;
        }
        return SessionParameters.canonicalName(name);
    }

    /** Where the word with index {@code n} (split on white space) starts in {@code sql}. */
    private static int indexOfWord(String sql, int n) {
        int i = 0;
        for (int word = 0; word < n; word++) {
            while (!Character.isWhitespace(sql.charAt(i))) {
                i++;
            }
            while (Character.isWhitespace(sql.charAt(i))) {
                i++;
            }
        }
        return i;
    }

    /** Whether every set_config in the text is one whose setting ends with the transaction. */
    static boolean onlyLocalSetConfig(byte[] text, int length) {
        String sql =
                new String(text, 0, length, StandardCharsets.ISO_8859_1).toLowerCase(Locale.ROOT);
        long calls = SET_CONFIG.matcher(sql).results().count();
        long local = LOCAL_SET_CONFIG.matcher(sql).results().count();
        return calls > 0 && calls == local;
    }

    /** Whether the text starts with SET (after white space): worth {@link #setName}. */
    static boolean startsWithSet(byte[] text, int length) {
        int i = 0;
        while (i < length
                && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r')) {
            i++;
        }
        return i + 3 < length
                && (text[i] | 0x20) == 's'
                && (text[i + 1] | 0x20) == 'e'
                && (text[i + 2] | 0x20) == 't'
                && Character.isWhitespace(text[i + 3]);
    }
}
