package io.pgrelay.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import java.util.List;
import org.junit.jupiter.api.Test;

class TlsSettingsTest {

    private static ProxyConfig load(String hocon) {
        Config c =
                ConfigFactory.parseString(hocon)
                        .withFallback(ProxyConfig.defaults())
                        .resolve()
                        .getConfig("pgrelay");
        return ProxyConfig.from(c);
    }

    @Test
    void defaultsAreThoseOfPgBouncer() {
        ProxyConfig c = load("");
        assertEquals(TlsSettings.Mode.DISABLE, c.clientTls().mode());
        assertEquals(TlsSettings.Mode.PREFER, c.serverTls().mode());
        assertEquals(List.of("TLSv1.2", "TLSv1.3"), c.clientTls().protocols());
        assertEquals(List.of(), c.clientTls().ciphers());
    }

    @Test
    void protocolSyntax() {
        assertEquals(List.of("TLSv1.2", "TLSv1.3"), TlsSettings.protocols("tlsv1.2, tlsv1.3", "x"));
        assertEquals(List.of("TLSv1.3"), TlsSettings.protocols("TLSv1.3", "x"));
        assertEquals(4, TlsSettings.protocols("all", "x").size());
        assertThrows(ConfigException.class, () -> TlsSettings.protocols("sslv3", "x"));
    }

    @Test
    void cipherShortcutsMeanTheEngineDefaults() {
        assertEquals(List.of(), TlsSettings.ciphers("secure"));
        assertEquals(
                List.of("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
                TlsSettings.ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"));
    }

    @Test
    void clientModesNeedTheirFiles() {
        ConfigException noCert =
                assertThrows(
                        ConfigException.class,
                        () -> load("pgrelay.tls.client_tls_sslmode = require"));
        assertTrue(noCert.getMessage().contains("client_tls_cert_file"), noCert.getMessage());
        ConfigException noCa =
                assertThrows(
                        ConfigException.class,
                        () ->
                                load(
                                        "pgrelay.tls { client_tls_sslmode = verify-ca,"
                                                + " client_tls_key_file = k, client_tls_cert_file = c }"));
        assertTrue(noCa.getMessage().contains("client_tls_ca_file"), noCa.getMessage());
        assertThrows(
                ConfigException.class, () -> load("pgrelay.tls.server_tls_sslmode = sometimes"));
        assertEquals(
                TlsSettings.Mode.VERIFY_FULL,
                load("pgrelay.tls.server_tls_sslmode = verify-full").serverTls().mode());
    }
}
