package io.pgrelay.session;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A client's view of its session parameters: the pool's welcome overlaid with what its startup
 * packet asked for, then whatever the servers report changed (ParameterStatus). Each server
 * connection it gets is brought in line with this before its requests run.
 *
 * <p>Clients that asked for the same settings share one interned, immutable map until one of them
 * changes a parameter (copy on write): an idle client holds a reference, not a map of its own, and
 * a server connection already matching that map needs no comparison at all.
 */
public final class ClientParameters {

    private Map<String, String> values;

    /** What the client started with: RESET returns here, as it would on its own connection. */
    private Map<String, String> baseline;

    /** The parameters the server announces (ParameterStatus), as in the welcome. */
    private Map<String, String> welcome;

    /** {@link #values} interned; null when values changed since. */
    private Map<String, String> interned;

    /**
     * The values a client starts with; returns what to greet it with, in the welcome's order (the
     * welcome's names, with the client's own values where it asked for them).
     *
     * @param loggedInWithThem the welcome comes from a login with these very startup parameters
     *     (session mode), so its values are the server's spelling of them ("Postgres, MDY"); the
     *     requested ones only fill in what the server does not report
     */
    public Map<String, String> start(
            Map<String, String> welcome, Map<String, String> requested, boolean loggedInWithThem) {
        Map<String, String> all = new LinkedHashMap<>(welcome);
        if (loggedInWithThem) {
            requested.forEach(all::putIfAbsent);
        } else {
            all.putAll(requested);
        }
        Map<String, String> greeting = new LinkedHashMap<>();
        for (String name : welcome.keySet()) {
            greeting.put(name, all.get(name));
        }
        values = interned = baseline = SessionParameters.intern(all);
        this.welcome = welcome;
        return greeting;
    }

    /** A server reported a new value (the client's SET, RESET or a reload). */
    public void reported(String name, String value) {
        if (values == interned) {
            values = new HashMap<>(values);
        }
        values.put(name, value);
        interned = null;
    }

    /**
     * The server said which settings the client's session has changed ({@link SessionCheck}). With
     * {@code all} of them, the client's values become its baseline with those on top, so a setting
     * it RESET returns to what it started with; otherwise they are the current values of the few a
     * simple SET named, taken as they are. Returns the announced parameters whose value the client
     * was last told differs from its own now (a RESET of a startup parameter): ParameterStatus to
     * send it.
     */
    public Map<String, String> settle(Map<String, String> sessionSettings, boolean all) {
        if (!all) {
            // The current values of a few settings SET in the session: nothing else moved.
            sessionSettings.forEach(this::reported);
            return Map.of();
        }
        Map<String, String> next = new HashMap<>(baseline);
        next.putAll(sessionSettings);
        for (String name : SessionParameters.NOT_SYNCED) {
            // The server's to say (is_superuser follows SET ROLE): whatever it last reported.
            String reported = values.get(name);
            if (reported != null) {
                next.put(name, reported);
            }
        }
        Map<String, String> announce = new LinkedHashMap<>();
        for (String name : welcome.keySet()) {
            String value = next.get(name);
            if (value != null
                    && !SessionParameters.NOT_SYNCED.contains(name)
                    && !value.equals(values.get(name))) {
                announce.put(name, value);
            }
        }
        if (!next.equals(values)) {
            values = next;
            interned = null;
        }
        return announce;
    }

    /** The values, interned: the identity a server connection's sync state is compared by. */
    public Map<String, String> interned() {
        if (interned == null) {
            values = interned = SessionParameters.intern(values);
        }
        return interned;
    }
}
