package io.pgrelay.proxy;

import io.pgrelay.admin.AdminControl;
import io.pgrelay.protocol.SqlState;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The console's control commands over the running proxy: PAUSE, RESUME, RECONNECT, KILL,
 * KILL_CLIENT, DISABLE, ENABLE, WAIT_CLOSE, RELOAD, SET and SHUTDOWN. A command that completes
 * later (PAUSE, WAIT_CLOSE) leaves a check the pool janitor runs until it does.
 */
final class AdminActions implements AdminControl {

    /** How SHUTDOWN stops pgrelay: at once, or letting transactions end (shutdown_timeout). */
    interface Stop {
        void stop(boolean immediate) throws InterruptedException;
    }

    private final RelayServices services;
    private final ConfigReloader reloader;
    private final Stop stop;
    private final List<Runnable> pendingChecks = new CopyOnWriteArrayList<>();

    AdminActions(RelayServices services, ConfigReloader reloader, Stop stop) {
        this.services = services;
        this.reloader = reloader;
        this.stop = stop;
    }

    /** Called by the pool janitor: completes the PAUSEs and WAIT_CLOSEs whose time has come. */
    void runPendingChecks() {
        pendingChecks.forEach(Runnable::run);
    }

    /** Runs {@code check} now and on every janitor tick until it completes {@code done}. */
    private CompletableFuture<String> until(CompletableFuture<String> done, Runnable check) {
        Runnable[] self = new Runnable[1];
        self[0] =
                () -> {
                    check.run();
                    if (done.isDone()) {
                        pendingChecks.remove(self[0]);
                    }
                };
        pendingChecks.add(self[0]);
        self[0].run();
        return done;
    }

    private static boolean matches(ServerPool p, String database) {
        return database == null || p.key().database().equals(database);
    }

    /**
     * PAUSE: new transactions wait; completes once no server connection of the database is in use.
     * A RESUME (or another PAUSE) before that completes it too, so a PAUSE racing a RESUME never
     * hangs (pgbouncer#715).
     */
    @Override
    public CompletableFuture<String> pause(String database) {
        HeldClients held = services.held();
        held.pause(database);
        CompletableFuture<String> done = new CompletableFuture<>();
        return until(
                done,
                () -> {
                    int active = 0;
                    for (ServerPool p : services.pools().all()) {
                        if (matches(p, database)) {
                            active += p.pool().stats().active();
                        }
                    }
                    if (!held.isPaused(database)) {
                        done.complete("resumed before all server connections were released");
                    } else if (active == 0) {
                        done.complete(null);
                    }
                });
    }

    @Override
    public CompletableFuture<String> resume(String database) {
        if (!services.held().resume(database)) {
            return AdminControl.failed("database \"" + database + "\" is not paused");
        }
        services.held().wake();
        return AdminControl.done();
    }

    /**
     * RECONNECT: every server connection of the database is closed, idle ones now, the others when
     * released.
     */
    @Override
    public CompletableFuture<String> reconnect(String database) {
        for (ServerPool p : services.pools().all()) {
            if (matches(p, database)) {
                p.pool().retire("RECONNECT");
            }
        }
        return AdminControl.done();
    }

    /** KILL: drop the database's clients and server connections; new clients wait until RESUME. */
    @Override
    public CompletableFuture<String> kill(String database) {
        services.held().pause(database);
        for (ClientSession s : services.sessions()) {
            if (!s.isConsole() && (database == null || database.equals(s.database()))) {
                s.disconnect(
                        SqlState.ADMIN_SHUTDOWN,
                        "database \"" + s.database() + "\" was killed (KILL)");
            }
        }
        for (ServerPool p : services.pools().all()) {
            if (matches(p, database)) {
                p.pool().retire("KILL");
                for (ServerConnection c : p.connections) {
                    c.close("KILL");
                }
            }
        }
        return AdminControl.done();
    }

    @Override
    public CompletableFuture<String> killClient(long clientId) {
        for (ClientSession s : services.sessions()) {
            if (s.id == clientId) {
                s.disconnect(SqlState.ADMIN_SHUTDOWN, "client killed (KILL_CLIENT)");
                return AdminControl.done();
            }
        }
        return AdminControl.failed("no client with id " + clientId);
    }

    @Override
    public CompletableFuture<String> disable(String database) {
        services.held().setDisabled(database, true);
        return AdminControl.done();
    }

    @Override
    public CompletableFuture<String> enable(String database) {
        services.held().setDisabled(database, false);
        return AdminControl.done();
    }

    /** WAIT_CLOSE: completes when every server connection of the database open now has closed. */
    @Override
    public CompletableFuture<String> waitClose(String database) {
        Set<ServerConnection> open = ConcurrentHashMap.newKeySet();
        for (ServerPool p : services.pools().all()) {
            if (matches(p, database)) {
                open.addAll(p.connections);
            }
        }
        CompletableFuture<String> done = new CompletableFuture<>();
        return until(
                done,
                () -> {
                    open.removeIf(c -> !c.channel().isOpen());
                    if (open.isEmpty()) {
                        done.complete(null);
                    }
                });
    }

    @Override
    public CompletableFuture<String> reload() {
        return CompletableFuture.completedFuture(reloader.reload());
    }

    @Override
    public CompletableFuture<String> set(String key, String value) {
        return CompletableFuture.completedFuture(reloader.set(key, value));
    }

    /** SHUTDOWN: stops on a thread of its own, so the console client is answered first. */
    @Override
    public CompletableFuture<String> shutdown(ShutdownMode mode) {
        boolean immediate = mode == ShutdownMode.IMMEDIATE;
        Thread t =
                new Thread(
                        () -> {
                            try {
                                stop.stop(immediate);
                            } catch (InterruptedException e) {
                                Thread.currentThread().interrupt();
                            }
                        },
                        "pgrelay-shutdown");
        t.setDaemon(true);
        t.start();
        return AdminControl.done();
    }
}
