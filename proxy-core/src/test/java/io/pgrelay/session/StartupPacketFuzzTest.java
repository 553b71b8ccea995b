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
     * Reads back "SET name TO literal;..." the way PostgreSQL would, for either setting of
     * standard_conforming_strings; fails on anything else.
     */
    private static Map<String, String> parseSets(String sql) {
        Map<String, String> sets = new LinkedHashMap<>();
        int i = 0;
        while (true) {
            assertTrue(sql.startsWith("SET ", i), sql);
            i += 4;
            int nameEnd = sql.indexOf(" TO ", i);
            assertTrue(nameEnd > i, sql);
            String name = sql.substring(i, nameEnd);
            assertTrue(SessionParameters.isValidName(name), "name " + name);
            i = nameEnd + 4;
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
            assertEquals(null, sets.put(name, value.toString()), "set twice: " + name);
            if (i == sql.length()) {
                return sets;
            }
            assertEquals(';', sql.charAt(i++), sql);
        }
    }
}
