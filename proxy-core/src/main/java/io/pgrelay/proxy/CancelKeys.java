package io.pgrelay.proxy;

import java.security.SecureRandom;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BackendKeyData pgrelay hands its clients, and the lookup a CancelRequest goes through. Keys
 * are random and unique among live sessions; a request with an unknown key is ignored without a
 * word, as PostgreSQL does.
 */
final class CancelKeys {

    record Key(int processId, int secretKey) {
        long packed() {
            return ((long) processId << 32) | (secretKey & 0xffffffffL);
        }
    }

    private final SecureRandom random = new SecureRandom();
    private final Map<Long, ClientSession> sessions = new ConcurrentHashMap<>();

    Key register(ClientSession session) {
        while (true) {
            // Positive process IDs: some clients print or compare them as PIDs.
            Key key = new Key(random.nextInt(Integer.MAX_VALUE - 1) + 1, random.nextInt());
            if (sessions.putIfAbsent(key.packed(), session) == null) {
                return key;
            }
        }
    }

    void unregister(Key key) {
        sessions.remove(key.packed());
    }

    void cancel(int processId, int secretKey) {
        ClientSession session = sessions.get(new Key(processId, secretKey).packed());
        if (session != null) {
            // The session's server field belongs to its loop.
            session.loop().execute(session::cancelCurrentQuery);
        }
    }
}
