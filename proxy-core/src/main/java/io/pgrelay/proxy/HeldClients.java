package io.pgrelay.proxy;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * PAUSE and DISABLE state, and the clients held waiting for a PAUSE to end or for a writable
 * primary. Held clients are woken to try again (each on its own loop); they hold again if still not
 * allowed.
 */
final class HeldClients {

    private final Set<String> pausedDatabases = ConcurrentHashMap.newKeySet();
    private volatile boolean pausedAll;
    private final Set<String> disabledDatabases = ConcurrentHashMap.newKeySet();
    private final Set<ClientSession> held = ConcurrentHashMap.newKeySet();

    /**
     * Why a client of {@code database} must wait before it may get a server connection, or null.
     */
    String holdReason(String database) {
        if (isPaused(database)) {
            return "database \"" + database + "\" is paused (PAUSE)";
        }
        return null;
    }

    /** Whether {@code database} is paused; null asks whether everything is (PAUSE without one). */
    boolean isPaused(String database) {
        return database == null ? pausedAll : pausedAll || pausedDatabases.contains(database);
    }

    /** PAUSE or KILL: null pauses every database. */
    void pause(String database) {
        if (database == null) {
            pausedAll = true;
        } else {
            pausedDatabases.add(database);
        }
    }

    /** RESUME: null resumes everything; false when {@code database} was not paused. */
    boolean resume(String database) {
        if (database == null) {
            pausedAll = false;
            pausedDatabases.clear();
            return true;
        }
        return pausedDatabases.remove(database) || pausedAll;
    }

    boolean isDisabled(String database) {
        return disabledDatabases.contains(database);
    }

    void setDisabled(String database, boolean disabled) {
        if (disabled) {
            disabledDatabases.add(database);
        } else {
            disabledDatabases.remove(database);
        }
    }

    void hold(ClientSession session) {
        held.add(session);
    }

    void unhold(ClientSession session) {
        held.remove(session);
    }

    boolean anyHeld() {
        return !held.isEmpty();
    }

    /** Lets held clients try again (each on its own loop); they hold again if still not allowed. */
    void wake() {
        for (ClientSession s : held) {
            s.loop().execute(s::retryHeld);
        }
    }
}
