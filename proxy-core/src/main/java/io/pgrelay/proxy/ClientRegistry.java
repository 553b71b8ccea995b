package io.pgrelay.proxy;

import io.netty.channel.EventLoop;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/** Every client connection, from accept to close: ids, slots, counts, and the timeout sweep. */
final class ClientRegistry {

    private final AtomicLong ids = new AtomicLong();
    private final Set<ClientSession> sessions = ConcurrentHashMap.newKeySet();
    private final ClientSlots slots = new ClientSlots();

    Set<ClientSession> all() {
        return sessions;
    }

    long nextId() {
        return ids.incrementAndGet();
    }

    /** A new connection, counted as logging in; false when the login slots are full. */
    boolean connected(ClientSession session, int maxLoginClients) {
        sessions.add(session);
        return slots.startLogin(session, maxLoginClients);
    }

    /** The client has logged in: it moves to a client slot; false when the slots are taken. */
    boolean loggedIn(ClientSession session, int maxClientConn) {
        if (!slots.addClient(maxClientConn)) {
            return false; // keeps its login slot until it goes
        }
        slots.endLogin(session);
        return true;
    }

    /** The connection went away; {@code loggedIn} says which slot it held. */
    void disconnected(ClientSession session, boolean loggedIn) {
        if (sessions.remove(session)) {
            if (loggedIn) {
                slots.removeClient();
            } else {
                slots.endLogin(session);
            }
        }
    }

    /** Logged-in clients (those still logging in are not counted: see ClientSlots). */
    int loggedInCount() {
        return slots.clients();
    }

    /** Connections whose SHOW CLIENTS state is {@code state} (active, waiting, login). */
    int count(String state) {
        int n = 0;
        for (ClientSession s : sessions) {
            if (s.stateLabel().equals(state)) {
                n++;
            }
        }
        return n;
    }

    /**
     * Runs every client's timeout checks on its own loop. One task per event loop, not per client:
     * 10,000 idle clients cost 2 tasks a second, not 10,000.
     */
    void checkTimeouts() {
        long now = System.nanoTime();
        Map<EventLoop, List<ClientSession>> byLoop = new IdentityHashMap<>();
        for (ClientSession s : sessions) {
            byLoop.computeIfAbsent(s.loop(), loop -> new ArrayList<>()).add(s);
        }
        byLoop.forEach(
                (loop, batch) ->
                        loop.execute(
                                () -> {
                                    for (ClientSession s : batch) {
                                        s.checkTimeouts(now);
                                    }
                                }));
    }
}
