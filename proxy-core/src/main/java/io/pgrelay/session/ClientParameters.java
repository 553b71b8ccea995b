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
        values = interned = SessionParameters.intern(all);
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

    /** The values, interned: the identity a server connection's sync state is compared by. */
    public Map<String, String> interned() {
        if (interned == null) {
            values = interned = SessionParameters.intern(values);
        }
        return interned;
    }
}
