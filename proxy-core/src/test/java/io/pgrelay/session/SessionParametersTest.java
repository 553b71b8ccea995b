package io.pgrelay.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SessionParametersTest {

    @Test
    void setsWhatDiffersAndResetsWhatAnEarlierClientLeft() {
        Map<String, String> server =
                new HashMap<>(
                        Map.of(
                                "TimeZone",
                                "UTC",
                                "application_name",
                                "",
                                "server_version",
                                "15.1",
                                "extra_float_digits",
                                "3"));
        Map<String, String> client = new LinkedHashMap<>();
        client.put("TimeZone", "Europe/Berlin");
        client.put("application_name", "");
        client.put("server_version", "15.1");
        assertEquals(
                "SELECT pg_catalog.set_config('TimeZone', 'Europe/Berlin', false);"
                        + "RESET extra_float_digits",
                SessionParameters.synchronize(client, server));
        assertEquals("Europe/Berlin", server.get("TimeZone"));
        assertNull(SessionParameters.synchronize(client, server));
    }

    @Test
    void literalsAreQuotedSafely() {
        assertEquals("'it''s'", SessionParameters.literal("it's"));
        assertEquals("E'a\\\\b'", SessionParameters.literal("a\\b"));
    }

    @Test
    void optionsAreSplitLikePostgreSQL() {
        Map<String, String> into = new LinkedHashMap<>();
        SessionParameters.parseOptions(
                "-c search_path=a,b --statement-timeout=5s -cTimeZone=UTC -c x=with\\ space", into);
        assertEquals(
                Map.of(
                        "search_path",
                        "a,b",
                        "statement_timeout",
                        "5s",
                        "TimeZone",
                        "UTC",
                        "x",
                        "with space"),
                into);
        assertThrows(
                IllegalArgumentException.class,
                () -> SessionParameters.parseOptions("-D /tmp", new HashMap<>()));
    }

    @Test
    void namesAreCanonical() {
        assertEquals("DateStyle", SessionParameters.canonicalName("datestyle"));
        assertEquals("search_path", SessionParameters.canonicalName("Search_Path"));
    }
}
