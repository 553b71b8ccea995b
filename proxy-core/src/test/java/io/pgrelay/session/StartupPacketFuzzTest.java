package io.pgrelay.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.protocol.ProtocolException;
import io.pgrelay.protocol.StartupMessage;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The startup packet as ClientSession reads it: code, parameters, the libpq "options" string and
 * parameter names. Allowed failures: ProtocolException and IllegalArgumentException (both become a
 * FATAL to the client). What is accepted must come out of SessionParameters as SQL that sets
 * exactly those parameters to exactly those values: the values are the client's, so a quoting slip
 * would be SQL injection on a pooled server connection.
 */
class StartupPacketFuzzTest {

    @FuzzTest
    void startupPacket(byte[] body) {
        // FrameDecoder hands on only packets of 8..MAX_STARTUP_PACKET_LENGTH bytes, length word
        // first.
        if (body.length < 4 || body.length > FrameDecoder.MAX_STARTUP_PACKET_LENGTH - 4) {
            return;
        }
        ByteBuf packet =
                Unpooled.buffer(4 + body.length).writeInt(4 + body.length).writeBytes(body);
        try {
            check(packet);
        } finally {
            packet.release();
        }
    }

    private static void check(ByteBuf packet) {
        StartupMessage.code(packet);
        Map<String, String> params;
        try {
            params = StartupMessage.parameters(packet);
        } catch (ProtocolException e) {
            return;
        }
        Map<String, String> requested;
        try {
            requested = SessionParameters.requested(params, java.util.Set.of());
        } catch (IllegalArgumentException e) {
            return;
        }
        for (String name : requested.keySet()) {
            assertEquals(
                    name,
                    SessionParameters.canonicalName(name),
                    "canonical names are fixed points");
        }
        Map<String, String> server = new HashMap<>();
        String sql = SessionParameters.synchronize(requested, server);
        Map<String, String> expected = new LinkedHashMap<>(requested);
        expected.keySet().removeAll(SessionParameters.NOT_SYNCED);
        assertEquals(expected, server, "server values after the SETs");
        assertEquals(
                expected, sql == null ? Map.of() : parseSets(sql), "what the SQL sets: " + sql);
    }

    /**
     * Reads back "SELECT pg_catalog.set_config(literal, literal, false), ..." the way PostgreSQL
     * would, for either setting of standard_conforming_strings; fails on anything else.
     */
    private static Map<String, String> parseSets(String sql) {
        Map<String, String> sets = new LinkedHashMap<>();
        String call = "pg_catalog.set_config(";
        assertTrue(sql.startsWith("SELECT "), sql);
        int[] at = {7};
        while (true) {
            assertTrue(sql.startsWith(call, at[0]), sql);
            at[0] += call.length();
            String name = literal(sql, at);
            assertTrue(SessionParameters.isValidName(name), "name " + name);
            assertTrue(sql.startsWith(", ", at[0]), sql);
            at[0] += 2;
            String value = literal(sql, at);
            assertTrue(sql.startsWith(", false)", at[0]), sql);
            at[0] += 8;
            assertEquals(null, sets.put(name, value), "set twice: " + name);
            if (at[0] == sql.length()) {
                return sets;
            }
            assertTrue(sql.startsWith(", ", at[0]), sql);
            at[0] += 2;
        }
    }

    /** The string literal at at[0], unquoted; at[0] moves past it. */
    private static String literal(String sql, int[] at) {
        int i = at[0];
        boolean escapes = sql.startsWith("E'", i);
        i += escapes ? 2 : 1;
        assertTrue(sql.charAt(i - 1) == '\'', sql);
        StringBuilder value = new StringBuilder();
        while (true) {
            assertTrue(i < sql.length(), "unterminated literal: " + sql);
            char c = sql.charAt(i++);
            if (c == '\'') {
                if (i < sql.length() && sql.charAt(i) == '\'') {
                    value.append('\'');
                    i++;
                    continue;
                }
                break;
            }
            if (c == '\\') {
                // Without E'', a backslash means one thing or another depending on
                // standard_conforming_strings: literal() must never leave one there.
                assertTrue(escapes, "backslash in a plain literal: " + sql);
                assertTrue(
                        i < sql.length() && sql.charAt(i) == '\\',
                        "backslash escape other than \\\\: " + sql);
                i++;
            }
            value.append(c);
        }
        at[0] = i;
        return value.toString();
    }
}
