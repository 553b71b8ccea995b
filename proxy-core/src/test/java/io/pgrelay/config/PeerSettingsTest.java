package io.pgrelay.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import io.pgrelay.routing.Backend;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PeerSettingsTest {

    private static ProxyConfig load(String hocon) {
        return ProxyConfig.from(
                ConfigFactory.parseString(hocon)
                        .withFallback(ProxyConfig.defaults())
                        .resolve()
                        .getConfig("pgrelay"));
    }

    @Test
    void defaultsNameTheHostAndForwardNothing() {
        PeerSettings p = load("").peers();
        assertEquals(0, p.peerId());
        assertTrue(p.staticPeers().isEmpty());
        assertFalse(p.instanceId().isBlank());
        assertFalse(p.advertiseHost().isBlank());
        // SHOW CONFIG shows what the empty settings resolved to.
        assertEquals(p.instanceId(), load("").settings().get("runtime.instance_id"));
    }

    @Test
    void staticPeersArePgBouncersPeersList() {
        PeerSettings p =
                load("pgrelay.peers { peer_id = 2, static_peers = [\"1=10.0.0.1:5432\","
                                + " \" 2 = pgrelay-b:6432 \"] }\n"
                                + "pgrelay.runtime.instance_id = b")
                        .peers();
        assertEquals(
                Map.of(1, new Backend("10.0.0.1", 5432), 2, new Backend("pgrelay-b", 6432)),
                p.staticPeers());
        assertEquals("b", p.instanceId());
    }

    @Test
    void badPeerSettingsNameTheSetting() {
        for (String bad :
                new String[] {
                    "pgrelay.peers.peer_id = 16384",
                    "pgrelay.peers.peer_id = -1",
                    "pgrelay.peers { peer_id = 1, static_peers = [\"1\"] }",
                    "pgrelay.peers { peer_id = 1, static_peers = [\"0=h:1\"] }",
                    "pgrelay.peers { peer_id = 1, static_peers = [\"x=h:1\"] }",
                    "pgrelay.peers { peer_id = 1, static_peers = [\"1=h:1\", \"1=g:2\"] }",
                    // A list without this instance's id: which keys would it issue?
                    "pgrelay.peers { static_peers = [\"1=h:1\"] }",
                }) {
            ConfigException e = assertThrows(ConfigException.class, () -> load(bad), bad);
            assertTrue(e.getMessage().contains("pgrelay.peers."), e.getMessage());
        }
    }
}
