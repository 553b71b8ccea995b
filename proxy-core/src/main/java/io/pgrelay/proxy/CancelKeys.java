package io.pgrelay.proxy;

import java.security.SecureRandom;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BackendKeyData pgrelay hands its clients, and the lookup a CancelRequest goes through. Keys
 * are random and unique among live sessions. With a peer id (several instances behind one address),
 * bits 17..30 of the process ID carry it, so a CancelRequest that reaches another instance can be
 * sent on to this one; the 32-bit secret stays fully random. A request with a key nobody issued is
 * ignored without a word, as PostgreSQL does.
 */
final class CancelKeys {

    private static final int PEER_SHIFT = 17;
    private static final int LOCAL_BITS = (1 << PEER_SHIFT) - 1;

    record Key(int processId, int secretKey) {
        long packed() {
            return ((long) processId << 32) | (secretKey & 0xffffffffL);
        }
    }

    private final SecureRandom random = new SecureRandom();
    private final Map<Long, ClientSession> sessions = new ConcurrentHashMap<>();
    private final Peers peers;

    CancelKeys(Peers peers) {
        this.peers = peers;
    }

    /** The peer id a process ID carries (0: none, or issued without one). */
    static int peerOf(int processId) {
        return processId >>> PEER_SHIFT;
    }

    /** A process ID with {@code peerId} (1..16383) in it, or a random one for 0. */
    static int processId(int peerId, int random) {
        // Positive process IDs: some clients print or compare them as PIDs.
        if (peerId == 0) {
            int pid = random & Integer.MAX_VALUE;
            return pid == 0 ? 1 : pid;
        }
        return (peerId << PEER_SHIFT) | (random & LOCAL_BITS);
    }

    Key register(ClientSession session) {
        while (true) {
            Key key = new Key(processId(peers.ownId(), random.nextInt()), random.nextInt());
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
        } else {
            peers.forward(processId, secretKey);
        }
    }
}
