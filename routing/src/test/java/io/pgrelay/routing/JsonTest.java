package io.pgrelay.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {

    @Test
    void parsesValues() {
        Map<String, Object> m =
                Json.parseObject(
                        " {\"a\": 1, \"b\": -2.5e3, \"c\": \"x\\\"y\\u00e9\\n\", \"d\": [true, false, null], \"e\": {}, "
                                + "\"big\": 123456789012345678901234567890}");
        assertEquals(1L, m.get("a"));
        assertEquals(-2500.0, m.get("b"));
        assertEquals("x\"y\u00e9\n", m.get("c"));
        assertEquals(java.util.Arrays.asList(true, false, null), m.get("d"));
        assertEquals(Map.of(), m.get("e"));
        assertEquals(1.2345678901234568E29, m.get("big"));
        assertNull(Json.parse("null"));
        assertEquals(List.of(), Json.parse("[]"));
    }

    @Test
    void rejectsMalformedInput() {
        for (String bad :
                List.of(
                        "",
                        "{",
                        "{\"a\":}",
                        "{\"a\":1,}",
                        "[1 2]",
                        "{\"a\":1} x",
                        "{'a':1}",
                        "\"\\q\"",
                        "tru",
                        "{\"a\":\"\u0001\"}",
                        "-")) {
            assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> Json.parseObject("[1]"));
        assertThrows(
                IllegalArgumentException.class,
                () -> Json.parse("[".repeat(100) + "]".repeat(100)));
    }
}
