package io.pgrelay.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A client's parameter view: interned while unchanged, copied on its first change. */
class ClientParametersTest {

    private static Map<String, String> welcome() {
        Map<String, String> w = new LinkedHashMap<>();
        w.put("server_version", "17.2");
        w.put("client_encoding", "UTF8");
        w.put("DateStyle", "ISO, MDY");
        w.put("TimeZone", "UTC");
        return w;
    }

    @Test
    void greetingKeepsTheWelcomeOrderWithTheClientsValues() {
        ClientParameters p = new ClientParameters();
        Map<String, String> greeting =
                p.start(welcome(), Map.of("DateStyle", "Postgres, MDY", "search_path", "x"), false);
        assertEquals(
                List.of("server_version", "client_encoding", "DateStyle", "TimeZone"),
                List.copyOf(greeting.keySet()));
        assertEquals("Postgres, MDY", greeting.get("DateStyle"));
        assertEquals("UTC", greeting.get("TimeZone"));
        Map<String, String> all = p.interned();
        assertEquals("x", all.get("search_path"), "asked for, though not reported");
        assertEquals(5, all.size());
    }

    @Test
    void clientsAskingForTheSameShareOneMap() {
        ClientParameters a = new ClientParameters();
        ClientParameters b = new ClientParameters();
        a.start(welcome(), Map.of("search_path", "s1"), false);
        b.start(welcome(), new LinkedHashMap<>(Map.of("search_path", "s1")), false);
        assertSame(a.interned(), b.interned());
        assertSame(a.interned(), a.interned(), "stable while unchanged");
        assertThrows(UnsupportedOperationException.class, () -> a.interned().put("x", "y"));

        ClientParameters c = new ClientParameters();
        c.start(welcome(), Map.of("search_path", "s2"), false);
        assertNotSame(a.interned(), c.interned());
    }

    @Test
    void aChangeCopiesAndLeavesTheSharedMapAlone() {
        ClientParameters a = new ClientParameters();
        ClientParameters b = new ClientParameters();
        a.start(welcome(), Map.of(), false);
        b.start(welcome(), Map.of(), false);
        Map<String, String> shared = a.interned();
        a.reported("TimeZone", "Europe/Paris");
        a.reported("application_name", "psql");
        assertEquals("UTC", shared.get("TimeZone"), "copy on write");
        assertSame(shared, b.interned());
        Map<String, String> changed = a.interned();
        assertNotSame(shared, changed);
        assertEquals("Europe/Paris", changed.get("TimeZone"));
        assertEquals("psql", changed.get("application_name"));
        assertSame(changed, a.interned());

        // Changing back to the same values finds the shared map again.
        a.reported("TimeZone", "UTC");
        b.reported("application_name", "psql");
        assertSame(a.interned(), b.interned());
    }

    @Test
    void loggedInWithTheStartupParametersTheServersSpellingWins() {
        // Session mode: the welcome comes from a login with the client's own startup
        // parameters, so it reports them as the server spells them.
        Map<String, String> welcome = new LinkedHashMap<>(welcome());
        welcome.put("DateStyle", "Postgres, MDY");
        ClientParameters p = new ClientParameters();
        Map<String, String> greeting =
                p.start(welcome, Map.of("DateStyle", "postgres,mdy", "search_path", "x"), true);
        assertEquals("Postgres, MDY", greeting.get("DateStyle"));
        assertEquals("x", p.interned().get("search_path"), "not reported: the client's own");
    }

    /**
     * After a session check: what the session changed sits on the client's startup values; a
     * startup value the client RESET comes back, and the client is told so.
     */
    @Test
    void settledSettingsSitOnTheStartupValues() {
        ClientParameters p = new ClientParameters();
        p.start(welcome(), Map.of("TimeZone", "Europe/Paris", "statement_timeout", "7s"), false);
        // SET search_path, and RESET TimeZone (the server reported its own default).
        p.reported("TimeZone", "UTC");
        p.reported("is_superuser", "off");
        Map<String, String> announce = p.settle(Map.of("search_path", "a, b"), true);
        assertEquals(Map.of("TimeZone", "Europe/Paris"), announce);
        Map<String, String> all = p.interned();
        assertEquals("a, b", all.get("search_path"));
        assertEquals("7s", all.get("statement_timeout"));
        assertEquals("Europe/Paris", all.get("TimeZone"));
        assertEquals("off", all.get("is_superuser"), "the server's to say, kept as reported");

        // RESET ALL: nothing from the session; the startup values stay, nothing to announce.
        assertEquals(Map.of(), p.settle(Map.of(), true));
        assertEquals(null, p.interned().get("search_path"));
        assertEquals("7s", p.interned().get("statement_timeout"));
    }
}
