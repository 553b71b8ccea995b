package io.pgrelay.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class EtcdTopologySourceSettingsTest {

    @Test
    void defaultsAndPrefix() {
        EtcdTopologySource.Settings s =
                EtcdTopologySource.Settings.of(List.of("127.0.0.1:2379"), null, "demo");
        assertEquals("/service/", s.namespace());
        assertEquals("/service/demo/", s.keyPrefix());
        assertEquals(Duration.ofSeconds(3), s.requestTimeout());
        assertEquals(Duration.ofSeconds(30), s.clientRebuildAfter());
        assertEquals(
                "http://127.0.0.1:2379",
                EtcdTopologySource.Settings.endpointUri("127.0.0.1:2379").toString());
    }

    @Test
    void rejectsBadValues() {
        assertThrows(
                IllegalArgumentException.class,
                () -> EtcdTopologySource.Settings.of(List.of(), null, "demo"));
        assertThrows(
                IllegalArgumentException.class,
                () -> EtcdTopologySource.Settings.of(List.of("http://no-port"), null, "demo"));
        assertThrows(
                IllegalArgumentException.class,
                () -> EtcdTopologySource.Settings.of(List.of("not a url:x"), null, "demo"));
        assertThrows(
                IllegalArgumentException.class,
                () -> EtcdTopologySource.Settings.of(List.of("127.0.0.1:2379"), null, " "));
        EtcdTopologySource.Settings ok =
                EtcdTopologySource.Settings.of(List.of("127.0.0.1:2379"), null, "demo");
        assertThrows(
                IllegalArgumentException.class,
                () -> ok.withBackoff(Duration.ofSeconds(2), Duration.ofSeconds(1)));
        assertThrows(IllegalArgumentException.class, () -> ok.withRequestTimeout(Duration.ZERO));
    }
}
