package io.pgrelay.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class StaticRouterTest {

    private final Backend primary = Backend.parse("127.0.0.1:5000");
    private final Backend r1 = Backend.parse("127.0.0.1:5001");
    private final Backend r2 = Backend.parse("127.0.0.1:5002");

    @Test
    void writesGoToThePrimary() {
        StaticRouter router = new StaticRouter(primary, List.of(r1, r2));
        for (int i = 0; i < 5; i++) {
            assertEquals(primary, router.route(Role.PRIMARY).orElseThrow());
        }
    }

    @Test
    void readsRoundRobinOverReplicas() {
        StaticRouter router = new StaticRouter(primary, List.of(r1, r2));
        assertEquals(
                List.of(r1, r2, r1, r2),
                List.of(
                        router.route(Role.REPLICA).orElseThrow(),
                                router.route(Role.REPLICA).orElseThrow(),
                        router.route(Role.REPLICA).orElseThrow(),
                                router.route(Role.REPLICA).orElseThrow()));
    }

    @Test
    void readsFallBackToThePrimaryWithoutReplicas() {
        assertEquals(
                primary, new StaticRouter(primary, List.of()).route(Role.REPLICA).orElseThrow());
    }

    @Test
    void parsesAddresses() {
        assertEquals(new Backend("::1", 6432), Backend.parse("[::1]:6432"));
        assertEquals("[::1]:6432", Backend.parse("[::1]:6432").toString());
        assertThrows(IllegalArgumentException.class, () -> Backend.parse("localhost"));
        assertThrows(IllegalArgumentException.class, () -> Backend.parse("localhost:99999"));
        assertThrows(IllegalArgumentException.class, () -> Backend.parse("localhost:x"));
    }
}
