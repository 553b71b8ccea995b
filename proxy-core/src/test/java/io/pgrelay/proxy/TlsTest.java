package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.spi.ILoggingEvent;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.pgrelay.testkit.CapturedLogs;
import io.pgrelay.testkit.PgServer;
import io.pgrelay.testkit.Proc;
import io.pgrelay.testkit.TestPki;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.postgresql.util.PSQLException;

/**
 * TLS on both sides with real clients: psql (libpq 15) and pgjdbc against pgrelay, and pgrelay
 * against PostgreSQL 15 with ssl = on; certificates from the test CA ({@link TestPki}).
 */
class TlsTest {

    @TempDir static Path dir;
    static TestPki pki;
    static PgServer pg;

    @RegisterExtension final CapturedLogs logs = new CapturedLogs();

    /** Where pgrelay reads its certificate and key; tests copy other kinds over them. */
    static Path liveCert;

    static Path liveKey;

    @BeforeAll
    static void start() throws Exception {
        pki = TestPki.create(dir.resolve("pki"));
        pg = PgServer.startPrimary(PgServer.Options.defaults().ssl(pki));
        liveCert = dir.resolve("pgrelay.crt");
        liveKey = dir.resolve("pgrelay.key");
        install(TestPki.Kind.GOOD);
    }

    @AfterAll
    static void stop() {
        if (pg != null) {
            pg.close();
        }
    }

    static void install(TestPki.Kind kind) throws IOException {
        TestPki.CertKey ck = pki.serverCert(kind);
        Files.copy(ck.key(), liveKey, StandardCopyOption.REPLACE_EXISTING);
        Files.copy(ck.cert(), liveCert, StandardCopyOption.REPLACE_EXISTING);
    }

    static RelayFixture.Builder relay(String clientMode) {
        return RelayFixture.builder(pg)
                .set("admin.admin_users", List.of("postgres"))
                .set("tls.client_tls_sslmode", clientMode)
                .set("tls.client_tls_cert_file", liveCert.toString())
                .set("tls.client_tls_key_file", liveKey.toString())
                .set("tls.client_tls_ca_file", pki.caCert().toString());
    }

    /** Reads the certificate files again (what RELOAD does); null when accepted. */
    static String reloadFiles(RelayFixture relay) {
        return relay.relay().set("tls.client_tls_cert_file", liveCert.toString());
    }

    // ------------------------------------------------------------------ client side

    @Test
    void requireServesTlsAndRefusesPlainText() throws Exception {
        try (RelayFixture relay = relay("require").start()) {
            assertEquals(
                    "t|TLSv1.3",
                    psqlOk(relay, "sslmode=require", "select 1 as x").replace("1", "t|TLSv1.3"));
            Proc.Result plain = psql(relay, "sslmode=disable", "select 1");
            assertFalse(plain.ok());
            assertTrue(
                    plain.stderr().contains("pgrelay accepts only TLS connections"),
                    plain.stderr());
            // pgjdbc checking pgrelay's certificate by IP address and by name; the server side
            // is TLS too (server_tls_sslmode = prefer, PostgreSQL has ssl on).
            for (String host : new String[] {"127.0.0.1", "localhost"}) {
                try (Connection c =
                        jdbc(relay, host, "sslmode=verify-full&sslrootcert=" + pki.caCert())) {
                    assertEquals(
                            "t",
                            one(c, "select ssl from pg_stat_ssl where pid = pg_backend_pid()"));
                }
            }
            // The console shows both sides' TLS as PgBouncer does (protocol/cipher).
            try (Connection app = jdbc(relay, "127.0.0.1", "sslmode=require");
                    Connection console =
                            relay.connect(
                                    relay.writePort(),
                                    "pgbouncer",
                                    "postgres",
                                    "postgres",
                                    Map.of("sslmode", "require", "preferQueryMode", "simple"))) {
                assertEquals("1", one(app, "select 1"));
                List<String> clientTls = tlsColumn(console, "show clients");
                assertEquals(2, clientTls.size(), clientTls.toString());
                assertTrue(
                        clientTls.stream().allMatch(t -> t != null && t.startsWith("TLSv1.3/")),
                        clientTls.toString());
                List<String> serverTls = tlsColumn(console, "show servers");
                assertFalse(serverTls.isEmpty());
                assertTrue(
                        serverTls.stream().allMatch(t -> t != null && t.startsWith("TLSv1.3/")),
                        serverTls.toString());
            }
        }
    }

    @Test
    void clientsCheckPgrelaysCertificate() throws Exception {
        try (RelayFixture relay = relay("prefer").start()) {
            String verifyFull = "sslmode=verify-full&sslrootcert=" + pki.caCert();
            String verifyCa = "sslmode=verify-ca&sslrootcert=" + pki.caCert();
            install(TestPki.Kind.WRONG_HOST);
            assertNull(reloadFiles(relay));
            assertRefused(relay, verifyFull);
            try (Connection c = jdbc(relay, "127.0.0.1", verifyCa)) {
                assertEquals("1", one(c, "select 1"));
            }
            install(TestPki.Kind.EXPIRED);
            assertNull(reloadFiles(relay));
            assertRefused(relay, verifyCa);
            install(TestPki.Kind.UNTRUSTED);
            assertNull(reloadFiles(relay));
            assertRefused(relay, verifyCa);
            // prefer: plain text still welcome
            try (Connection c = jdbc(relay, "127.0.0.1", "sslmode=disable")) {
                assertEquals("1", one(c, "select 1"));
            }
        } finally {
            install(TestPki.Kind.GOOD);
        }
    }

    @Test
    void channelBindingRequired() throws Exception {
        try (RelayFixture relay = relay("require").start()) {
            assertEquals("1", psqlOk(relay, "sslmode=require channel_binding=require", "select 1"));
            try (Connection c =
                    jdbc(relay, "127.0.0.1", "sslmode=require&channelBinding=require")) {
                assertEquals("1", one(c, "select 1"));
            }
            // The wrong password fails as ever, bound or not.
            Proc.Result wrong =
                    Proc.of(
                                    psqlCommand(
                                            relay,
                                            "sslmode=require channel_binding=require",
                                            "select 1"))
                            .cleanPgEnv()
                            .env("PGPASSWORD", "wrong")
                            .timeout(Duration.ofSeconds(30))
                            .run();
            assertTrue(wrong.stderr().contains("password authentication failed"), wrong.stderr());
        }
        try (RelayFixture relay = RelayFixture.builder(pg).start()) {
            // Without TLS there is nothing to bind to: libpq refuses, as against PostgreSQL.
            Proc.Result r = psql(relay, "sslmode=disable channel_binding=require", "select 1");
            assertFalse(r.ok());
            assertTrue(r.stderr().contains("channel binding"), r.stderr());
        }
    }

    @Test
    void authQueryUserOverTlsWithChannelBinding() throws Exception {
        // app is not in the auth file: its SCRAM secret comes from pg_shadow, and its proof is
        // bound to pgrelay's certificate all the same.
        try (RelayFixture relay =
                        relay("require")
                                .userlist("\"postgres\" \"postgres\"\n")
                                .set("auth.auth_user", "postgres")
                                .set("auth.auth_dbname", "postgres")
                                .start();
                Connection c = jdbc(relay, "127.0.0.1", "sslmode=require&channelBinding=require")) {
            assertEquals(PgServer.APP_USER, one(c, "select current_user"));
            // pgrelay's own SCRAM login as app (the ClientKey from that bound proof) ran over
            // TLS too (server_tls_sslmode = prefer, PostgreSQL with ssl on).
            assertEquals("t", one(c, "select ssl from pg_stat_ssl where pid = pg_backend_pid()"));
        }
    }

    @Test
    void verifyCaAsksForClientCertificates() throws Exception {
        try (RelayFixture relay = relay("verify-ca").start()) {
            TestPki.CertKey good = pki.clientCert(PgServer.APP_USER);
            TestPki.CertKey untrusted = pki.untrustedClientCert(PgServer.APP_USER);
            assertEquals(
                    "1",
                    psqlOk(
                            relay,
                            "sslmode=require sslcert='"
                                    + good.cert()
                                    + "' sslkey='"
                                    + good.key()
                                    + "'",
                            "select 1"));
            assertFalse(psql(relay, "sslmode=require", "select 1").ok());
            assertFalse(
                    psql(
                                    relay,
                                    "sslmode=require sslcert='"
                                            + untrusted.cert()
                                            + "' sslkey='"
                                            + untrusted.key()
                                            + "'",
                                    "select 1")
                            .ok());
            try (Connection c =
                    jdbc(
                            relay,
                            "127.0.0.1",
                            "sslmode=require&sslcert="
                                    + good.cert()
                                    + "&sslkey="
                                    + good.keyPk8())) {
                assertEquals("1", one(c, "select 1"));
            }
        }
    }

    @Test
    void directTlsNeedsAlpn() throws Exception {
        try (RelayFixture relay = relay("require").start()) {
            // pgjdbc's sslNegotiation=direct is libpq 17's sslnegotiation=direct: ALPN postgresql
            try (Connection c =
                    jdbc(
                            relay,
                            "127.0.0.1",
                            "sslmode=verify-full&sslNegotiation=direct&sslrootcert="
                                    + pki.caCert())) {
                assertEquals("1", one(c, "select 1"));
            }
            // Without ALPN the handshake completes, then the connection is closed unanswered.
            try (SSLSocket tls = directTls(relay.writePort(), null)) {
                DataOutputStream out = new DataOutputStream(tls.getOutputStream());
                writeStartup(out);
                assertEquals(-1, tls.getInputStream().read());
            }
            try (SSLSocket tls = directTls(relay.writePort(), "postgresql")) {
                DataOutputStream out = new DataOutputStream(tls.getOutputStream());
                writeStartup(out);
                assertEquals('R', tls.getInputStream().read());
            }
        }
    }

    @Test
    void plainTextAfterSslRequestIsRefused() throws Exception {
        try (RelayFixture relay = relay("prefer").start();
                Socket s = new Socket("127.0.0.1", relay.writePort())) {
            s.setSoTimeout(10_000);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            // One write: SSLRequest with a startup packet behind it, as a man in the middle could
            // inject (CVE-2021-23214).
            ByteArrayOutputStream both = new ByteArrayOutputStream();
            DataOutputStream w = new DataOutputStream(both);
            w.writeInt(8);
            w.writeInt(80877103);
            writeStartup(w);
            out.write(both.toByteArray());
            out.flush();
            byte[] reply = s.getInputStream().readAllBytes();
            assertEquals('E', reply[0]);
            String text = new String(reply, StandardCharsets.UTF_8);
            assertTrue(text.contains("08P01"), text);
            assertTrue(text.contains("received unencrypted data after SSL request"), text);
        }
    }

    @Test
    void garbageWhereTheHandshakeShouldBeIsClosedAndOthersGoOn() throws Exception {
        try (RelayFixture relay = relay("prefer").start();
                Connection bystander = jdbc(relay, "127.0.0.1", "sslmode=require")) {
            byte[] junk = new byte[4096];
            new java.util.Random(7).nextBytes(junk);
            // A "direct handshake" that is no TLS record after its first byte.
            junk[0] = 0x16;
            try (Socket s = new Socket("127.0.0.1", relay.writePort())) {
                s.setSoTimeout(10_000);
                s.getOutputStream().write(junk);
                s.getOutputStream().flush();
                assertClosedWithAtMostAnAlert(s);
            }
            // The same after an accepted SSLRequest.
            try (Socket s = new Socket("127.0.0.1", relay.writePort())) {
                s.setSoTimeout(10_000);
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                out.writeInt(8);
                out.writeInt(80877103);
                out.flush();
                assertEquals('S', s.getInputStream().read());
                out.write(junk, 1, junk.length - 1);
                out.flush();
                assertClosedWithAtMostAnAlert(s);
            }
            assertEquals("1", one(bystander, "select 1"));
            try (Connection after = jdbc(relay, "127.0.0.1", "sslmode=require")) {
                assertEquals("1", one(after, "select 1"));
            }
        }
    }

    @Test
    void certificateReloadKeepsClientsAndRejectsBrokenFiles() throws Exception {
        try (RelayFixture relay = relay("require").start();
                Connection before = jdbc(relay, "127.0.0.1", "sslmode=require")) {
            BigInteger first = presentedSerial(relay.writePort());
            TestPki.CertKey renewed = pki.reissueServerCert(TestPki.Kind.GOOD);
            install(TestPki.Kind.GOOD);
            assertNull(reloadFiles(relay));
            BigInteger second = presentedSerial(relay.writePort());
            assertNotEquals(first, second);
            assertEquals(renewed.serial(), second);
            assertEquals("1", one(before, "select 1"), "a client connected before still works");

            Files.writeString(liveCert, "-----BEGIN CERTIFICATE-----\nbroken\n");
            String rejected = reloadFiles(relay);
            assertTrue(rejected != null && rejected.contains(liveCert.toString()), rejected);
            assertTrue(
                    logs.events().stream()
                            .map(ILoggingEvent::getFormattedMessage)
                            .anyMatch(
                                    m -> m.contains("rejected") && m.contains(liveCert.toString())),
                    "a WARN names the file");
            assertEquals(second, presentedSerial(relay.writePort()), "the running one is kept");
            try (Connection after = jdbc(relay, "127.0.0.1", "sslmode=require")) {
                assertEquals("1", one(after, "select 1"));
            }
            // A key that belongs to another certificate is refused as well.
            install(TestPki.Kind.GOOD);
            Files.copy(
                    pki.serverCert(TestPki.Kind.WRONG_HOST).key(),
                    liveKey,
                    StandardCopyOption.REPLACE_EXISTING);
            String mismatch = reloadFiles(relay);
            assertTrue(mismatch != null && mismatch.contains("does not belong"), mismatch);
        } finally {
            install(TestPki.Kind.GOOD);
        }
    }

    @Test
    void tlsClientsCanCancel() throws Exception {
        try (RelayFixture relay = relay("require").start();
                Connection c = jdbc(relay, "127.0.0.1", "sslmode=require")) {
            Statement st = c.createStatement();
            CompletableFuture<SQLException> running =
                    CompletableFuture.supplyAsync(
                            () -> {
                                try {
                                    st.execute("select pg_sleep(30)");
                                    return null;
                                } catch (SQLException e) {
                                    return e;
                                }
                            });
            Thread.sleep(500);
            long start = System.nanoTime();
            st.cancel();
            SQLException e = running.get(20, TimeUnit.SECONDS);
            assertEquals("57014", e == null ? null : e.getSQLState());
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(15));
        }
    }

    // ------------------------------------------------------------------ server side

    @Test
    void serverVerifyFullByAddress() throws Exception {
        try (RelayFixture relay =
                        RelayFixture.builder(pg)
                                .set("tls.server_tls_sslmode", "verify-full")
                                .set("tls.server_tls_ca_file", pki.caCert().toString())
                                .start();
                Connection c = relay.app()) {
            assertEquals("t", one(c, "select ssl from pg_stat_ssl where pid = pg_backend_pid()"));
        }
        try (RelayFixture relay =
                RelayFixture.builder(pg)
                        .set("tls.server_tls_sslmode", "verify-ca")
                        .set("tls.server_tls_ca_file", pki.untrustedCa().cert().toString())
                        .start()) {
            SQLException e = assertThrows(SQLException.class, relay::app);
            assertTrue(e.getMessage().contains("TLS handshake failed"), e.getMessage());
        }
    }

    @Test
    void serverClientCertificate() throws Exception {
        // certuser logs in to PostgreSQL by certificate (pg_hba "cert"): pgrelay presents one.
        TestPki.CertKey cert = pki.clientCert(PgServer.CERT_USER);
        try (RelayFixture relay =
                        RelayFixture.builder(pg)
                                .userlist("\"" + PgServer.CERT_USER + "\" \"client-side-only\"\n")
                                .set("tls.server_tls_sslmode", "verify-full")
                                .set("tls.server_tls_ca_file", pki.caCert().toString())
                                .set("tls.server_tls_cert_file", cert.cert().toString())
                                .set("tls.server_tls_key_file", cert.key().toString())
                                .start();
                Connection c = relay.connect(PgServer.CERT_USER, "client-side-only")) {
            assertEquals(PgServer.CERT_USER, one(c, "select current_user"));
        }
    }

    // ------------------------------------------------------------------ helpers

    /**
     * The connection ends (EOF, or a reset as unread junk is discarded) having sent nothing but,
     * perhaps, a TLS alert record (0x15): no plain-text protocol message.
     */
    private static void assertClosedWithAtMostAnAlert(Socket s) throws IOException {
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        try {
            int b;
            while ((b = s.getInputStream().read()) != -1) {
                got.write(b);
            }
        } catch (java.net.SocketException reset) {
            // closed with our junk unread: the kernel answers with RST
        }
        byte[] bytes = got.toByteArray();
        assertTrue(bytes.length == 0 || bytes[0] == 0x15, "sent " + bytes.length + " bytes");
    }

    private static List<String> tlsColumn(Connection console, String show) throws SQLException {
        List<String> out = new ArrayList<>();
        try (Statement st = console.createStatement();
                ResultSet rs = st.executeQuery(show)) {
            while (rs.next()) {
                out.add(rs.getString("tls"));
            }
        }
        return out;
    }

    private static void assertRefused(RelayFixture relay, String params) {
        PSQLException e =
                assertThrows(PSQLException.class, () -> jdbc(relay, "127.0.0.1", params).close());
        String m = String.valueOf(e.getMessage());
        assertTrue(m.contains("SSL") || m.contains("hostname") || m.contains("certificate"), m);
    }

    static Connection jdbc(RelayFixture relay, String host, String params) throws SQLException {
        Map<String, String> props = new HashMap<>();
        props.put("prepareThreshold", "0");
        for (String kv : params.split("&")) {
            int eq = kv.indexOf('=');
            props.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        Properties p = new Properties();
        p.setProperty("user", PgServer.APP_USER);
        p.setProperty("password", PgServer.APP_PASSWORD);
        p.setProperty("connectTimeout", "10");
        p.setProperty("socketTimeout", "60");
        p.putAll(props);
        return DriverManager.getConnection(
                "jdbc:postgresql://" + host + ":" + relay.writePort() + "/" + PgServer.APP_DB, p);
    }

    private static String[] psqlCommand(RelayFixture relay, String conn, String sql) {
        return new String[] {
            PgServer.pgBinDir().resolve("psql").toString(),
            "-X",
            "-A",
            "-t",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "host=127.0.0.1 port="
                    + relay.writePort()
                    + " dbname="
                    + PgServer.APP_DB
                    + " user="
                    + PgServer.APP_USER
                    + " "
                    + conn,
            "-c",
            sql
        };
    }

    private static Proc.Result psql(RelayFixture relay, String conn, String sql) {
        return Proc.of(psqlCommand(relay, conn, sql))
                .cleanPgEnv()
                .env("PGPASSWORD", PgServer.APP_PASSWORD)
                .timeout(Duration.ofSeconds(30))
                .run();
    }

    private static String psqlOk(RelayFixture relay, String conn, String sql) {
        Proc.Result r = psql(relay, conn, sql);
        assertTrue(r.ok(), r.stderr());
        return r.stdoutTrimmed();
    }

    private static void writeStartup(DataOutputStream out) throws IOException {
        out.write(
                RawClient.startupPacket(
                        3 << 16, "user", PgServer.APP_USER, "database", PgServer.APP_DB));
        out.flush();
    }

    private static SSLSocket directTls(int port, String alpn) throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, InsecureTrustManagerFactory.INSTANCE.getTrustManagers(), null);
        SSLSocket tls = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", port);
        tls.setSoTimeout(10_000);
        if (alpn != null) {
            SSLParameters params = tls.getSSLParameters();
            params.setApplicationProtocols(new String[] {alpn});
            tls.setSSLParameters(params);
        }
        tls.startHandshake();
        return tls;
    }

    /** The serial of the certificate pgrelay presents to a new client now. */
    private static BigInteger presentedSerial(int port) throws Exception {
        return TestPki.presentedSerial("127.0.0.1", port);
    }
}
