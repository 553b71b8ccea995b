package io.pgrelay.health;

import static org.junit.jupiter.api.Assertions.assertThrows;

import java.net.ConnectException;
import java.net.InetAddress;
import java.net.Socket;

/** Test helper: whether anything still listens on a loopback port. */
final class Listening {

    private Listening() {}

    /**
     * Fails unless a connection to {@code 127.0.0.1:port} is refused. A closed server's port is
     * checked this way, not by binding it again: it came from the kernel's ephemeral range, where
     * any outgoing connection on the machine may be given it as soon as it is free, and such a
     * connection makes a bind fail although nothing listens.
     */
    static void assertNothingListensOn(int port) {
        assertThrows(
                ConnectException.class,
                () -> new Socket(InetAddress.getByName("127.0.0.1"), port).close(),
                "something still listens on port " + port);
    }
}
