package io.pgrelay.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class LogSafeTest {

    @Test
    void plainNamesAreOnlyQuoted() {
        assertEquals("\"appdb\"", LogSafe.quote("appdb"));
        assertEquals("\"Straße-ünïcode_日本\"", LogSafe.quote("Straße-ünïcode_日本"));
        assertEquals("null", LogSafe.quote(null));
        assertEquals("\"\"", LogSafe.quote(""));
    }

    @Test
    void lineBreaksTabsAndQuotesAreEscaped() {
        assertEquals("\"a\\nb\\rc\\td\"", LogSafe.quote("a\nb\rc\td"));
        // A name cannot close the quotes early or smuggle an escape of its own.
        assertEquals("\"x\\\" admin=\\\"yes\\\\\"", LogSafe.quote("x\" admin=\"yes\\"));
    }

    @Test
    void controlCharactersBecomeHexEscapes() {
        assertEquals("\"\\x00\\x01\\x1f\"", LogSafe.quote("\0\u0001\u001f"));
        assertEquals("\"\\x1b[31mred\"", LogSafe.quote("\u001b[31mred"), "ESC");
        assertEquals("\"\\x7f\"", LogSafe.quote("\u007f"), "DEL");
        assertEquals(
                "\"\\x80\\x85\\x9b\\x9f\"",
                LogSafe.quote("\u0080\u0085\u009b\u009f"),
                "C1, NEL and CSI included");
        assertEquals(
                "\"\\u202eevil\\u2028\\u2029\\ufeff\\u200b\"",
                LogSafe.quote("\u202eevil\u2028\u2029\ufeff\u200b"),
                "bidi override, line and paragraph separator, BOM, zero-width space");
        assertEquals("\"\u00a0\u00e9\"", LogSafe.quote("\u00a0\u00e9"), "printable Latin-1 stays");
    }

    @Test
    void longNamesAreCutAt64Characters() {
        String name = "d".repeat(9000);
        String quoted = LogSafe.quote(name);
        assertEquals("\"" + "d".repeat(64) + "\"...", quoted);
        assertEquals(
                "\"" + "d".repeat(64) + "\"",
                LogSafe.quote("d".repeat(64)),
                "exactly at the limit: not cut");
        assertEquals("\"abc\"...", LogSafe.quote("abcdef", 3));
    }

    @Test
    void theCapCountsInputCharactersSoEscapingCannotHideTheCut() {
        String quoted = LogSafe.quote("\n".repeat(1000));
        assertEquals("\"" + "\\n".repeat(64) + "\"...", quoted);
        assertTrue(quoted.length() < 4 * LogSafe.NAME_LIMIT + 8, quoted);
    }

    @Test
    void aSurrogatePairIsNeverSplit() {
        String name = "a".repeat(63) + "\uD83D\uDE00" + "tail"; // U+1F600 at characters 63-64
        assertEquals("\"" + "a".repeat(63) + "\"...", LogSafe.quote(name));
    }

    @Test
    void escapeHasNoQuotes() {
        assertEquals(
                "FATAL 3D000 database \"x\\ny\" does not exist",
                LogSafe.escape("FATAL 3D000 database \"x\ny\" does not exist", 200));
        assertEquals("abc...", LogSafe.escape("abcdef", 3));
        assertEquals("null", LogSafe.escape(null, 3));
    }
}
