package io.pgrelay.health;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class HealthTest {

    @Test
    void readinessIsUpOnlyWithoutUnmetConditions() {
        assertTrue(Health.readiness(List.of()).isUp());
        Health notReady = Health.readiness(List.of("no confirmed writable primary"));
        assertFalse(notReady.isUp());
        assertEquals(Health.NOT_READY, notReady.status());
        assertEquals(List.of("no confirmed writable primary"), notReady.reasons());
    }

    @Test
    void notesKeepReadinessUpAndAreInTheBody() {
        Health degraded = Health.readiness(List.of(), List.of("etcd unreachable"));
        assertTrue(degraded.isUp());
        assertEquals("{\"status\":\"UP\",\"notes\":[\"etcd unreachable\"]}", degraded.toJson());
        Health both = Health.readiness(List.of("no primary"), List.of("etcd unreachable"));
        assertFalse(both.isUp());
        assertEquals(List.of("no primary", "etcd unreachable"), both.reasons());
        assertEquals(Health.up(), Health.readiness(List.of(), List.of()));
    }

    @Test
    void jsonEscapesQuotesBackslashesAndControlCharacters() {
        assertEquals(
                "{\"status\":\"DOWN\",\"reasons\":[\"a\\\"b\\\\c\\nd\\u0001\"]}",
                Health.down("a\"b\\c\nd\u0001").toJson());
        assertEquals("{\"status\":\"SHUTTING_DOWN\"}", Health.shuttingDown().toJson());
    }
}
