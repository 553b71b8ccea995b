package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.PatroniCluster;
import io.pgrelay.testkit.TestPki;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * server_tls_sslmode = verify-full against Patroni members: the host pgrelay checks the certificate
 * against is the one in the member's conn_url in etcd (127.0.0.1 here, an IP address in the
 * certificate's subjectAltName), for the leader and the replicas alike.
 */
@Timeout(240)
class TlsPatroniTest {

    @TempDir static Path dir;

    @Test
    void verifyFullToLeaderAndReplicas() throws Exception {
        TestPki pki = TestPki.create(dir.resolve("pki"));
        try (PatroniCluster cluster =
                        PatroniCluster.start("pgrelaytls" + ProcessHandle.current().pid(), pki);
                RelayFixture relay =
                        RelayFixture.patroni(cluster)
                                .set("tls.server_tls_sslmode", "verify-full")
                                .set("tls.server_tls_ca_file", pki.caCert().toString())
                                .set("routing.patroni.read_fallback_to_primary", false)
                                .start()) {
            String ssl = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
            Await.until(
                    "pgrelay confirms the leader over TLS",
                    Duration.ofSeconds(60),
                    () -> {
                        try (Connection c = relay.app()) {
                            return "f".equals(one(c, "select pg_is_in_recovery()"));
                        } catch (SQLException e) {
                            return false;
                        }
                    });
            try (Connection w = relay.app()) {
                assertEquals("t", one(w, ssl));
                assertEquals("f", one(w, "select pg_is_in_recovery()"));
            }
            try (Connection r = relay.appRead()) {
                assertEquals("t", one(r, ssl));
                assertEquals("t", one(r, "select pg_is_in_recovery()"));
            }
        }
    }
}
