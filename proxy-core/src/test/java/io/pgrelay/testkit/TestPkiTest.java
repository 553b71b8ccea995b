package io.pgrelay.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.CertificateExpiredException;
import java.security.cert.X509Certificate;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * TestPki's files against the real consumers: the JDK via Netty's SslContextBuilder, libpq (psql),
 * pgjdbc and PostgreSQL 15 with {@code ssl = on} ({@link PgServer.Options#ssl}).
 */
class TestPkiTest {

    @TempDir Path dir;

    @Test
    void writesPemFilesSignedByTheRightCa() throws Exception {
        TestPki pki = TestPki.create(dir);
        X509Certificate ca = pki.ca().certificate();
        X509Certificate good = pki.serverCert(TestPki.Kind.GOOD).certificate();

        good.verify(ca.getPublicKey());
        good.checkValidity();
        assertEquals(
                List.of(List.of(2, "localhost"), List.of(7, "127.0.0.1")),
                List.copyOf(good.getSubjectAlternativeNames()));
        assertEquals(
                List.of(List.of(2, TestPki.WRONG_HOST_NAME)),
                List.copyOf(
                        pki.serverCert(TestPki.Kind.WRONG_HOST)
                                .certificate()
                                .getSubjectAlternativeNames()));
        assertThrows(
                CertificateExpiredException.class,
                () -> pki.serverCert(TestPki.Kind.EXPIRED).certificate().checkValidity());
        pki.serverCert(TestPki.Kind.UNTRUSTED)
                .certificate()
                .verify(pki.untrustedCa().certificate().getPublicKey());
        assertThrows(
                Exception.class,
                () ->
                        pki.serverCert(TestPki.Kind.UNTRUSTED)
                                .certificate()
                                .verify(ca.getPublicKey()));

        TestPki.CertKey app = pki.clientCert("app");
        assertEquals("CN=app", app.certificate().getSubjectX500Principal().getName());
        app.certificate().verify(ca.getPublicKey());
        assertEquals(app, pki.clientCert("app"), "issued once per user");
        assertEquals(dir.resolve("client-app.crt"), app.cert());

        // Key formats: PKCS#8 PEM for Netty/OpenSSL/PostgreSQL, the same bytes as DER for pgjdbc.
        String pem = Files.readString(app.key(), StandardCharsets.US_ASCII);
        assertTrue(pem.startsWith("-----BEGIN PRIVATE KEY-----\n"), pem);
        assertArrayEquals(
                java.util.Base64.getMimeDecoder()
                        .decode(
                                pem.replace("-----BEGIN PRIVATE KEY-----", "")
                                        .replace("-----END PRIVATE KEY-----", "")),
                Files.readAllBytes(app.keyPk8()));
        for (Path key : List.of(app.key(), app.keyPk8(), pki.ca().key())) {
            assertEquals(
                    "rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(key)));
        }

        // Reissue: same files, new serial and new key.
        TestPki.CertKey before = pki.serverCert(TestPki.Kind.GOOD);
        byte[] oldKey = Files.readAllBytes(before.key());
        TestPki.CertKey after = pki.reissueServerCert(TestPki.Kind.GOOD);
        assertEquals(before.cert(), after.cert());
        assertNotEquals(before.serial(), after.serial());
        assertEquals(after.serial(), after.certificate().getSerialNumber());
        assertFalse(java.util.Arrays.equals(oldKey, Files.readAllBytes(after.key())));
        assertEquals(after, pki.serverCert(TestPki.Kind.GOOD));
    }

    /** The PEMs load into Netty's JDK SslContext without a keystore, both ways (mutual TLS). */
    @Test
    void nettyJdkEngineLoadsThePemFiles() throws Exception {
        TestPki pki = TestPki.create(dir);
        TestPki.CertKey client = pki.clientCert("app");

        for (String host : List.of("localhost", "127.0.0.1")) {
            handshake(server(pki, TestPki.Kind.GOOD), client(pki, client), host);
        }
        assertHandshakeFails(
                server(pki, TestPki.Kind.WRONG_HOST),
                client(pki, client),
                "No subject alternative");
        assertHandshakeFails(server(pki, TestPki.Kind.EXPIRED), client(pki, client), "NotAfter");
        assertHandshakeFails(
                server(pki, TestPki.Kind.UNTRUSTED), client(pki, client), "PKIX path building");
        // The server side requires a client certificate from its CA: the JDK client withholds
        // one from a CA the server does not name in its CertificateRequest, and is refused.
        assertHandshakeFails(
                server(pki, TestPki.Kind.GOOD),
                client(pki, pki.untrustedClientCert("app")),
                "Empty client certificate chain");
    }

    @Test
    @Timeout(120)
    void postgresWithSslAcceptsLibpqAndPgjdbc() throws Exception {
        TestPki pki = TestPki.create(dir);
        try (PgServer pg = PgServer.startPrimary(PgServer.Options.defaults().ssl(pki))) {
            assertEquals("on", pg.psql(PgServer.POSTGRES_DB, "show ssl"));
            String sslOfMe = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";

            // libpq verify-full, by IP and by name (SAN IP:127.0.0.1 and DNS:localhost).
            for (String host : List.of("127.0.0.1", "localhost")) {
                assertEquals("t", psqlOk(pg, host, "verify-full", pki.caCert(), sslOfMe));
            }
            // Plain TCP still works unless sslOnly().
            assertEquals("f", psqlOk(pg, "127.0.0.1", "disable", null, sslOfMe));
            assertTrue(
                    psql(pg, "127.0.0.1", "verify-ca", pki.untrustedCa().cert(), "select 1")
                            .stderr()
                            .contains("certificate verify failed"));

            // Client certificate login (cert auth, CN = role), and one from the other CA refused.
            TestPki.CertKey certUser = pki.clientCert(PgServer.CERT_USER);
            assertEquals(
                    "certuser|/CN=certuser",
                    psqlCertOk(
                            pg,
                            pki,
                            certUser,
                            "select current_user, client_dn from pg_stat_ssl"
                                    + " where pid = pg_backend_pid()"));
            assertFalse(
                    psqlCert(pg, pki, pki.untrustedClientCert(PgServer.CERT_USER), "select 1")
                            .ok());

            // pgjdbc: PEM sslrootcert; client key as PKCS#8 DER (.pk8) for LibPQFactory.
            try (Connection c =
                    jdbc(
                            pg,
                            "sslmode=verify-full&sslrootcert=" + pki.caCert(),
                            PgServer.APP_USER,
                            PgServer.APP_PASSWORD)) {
                assertEquals("t", query(c, sslOfMe));
            }
            try (Connection c =
                    jdbc(
                            pg,
                            "sslmode=verify-full&sslrootcert="
                                    + pki.caCert()
                                    + "&sslcert="
                                    + certUser.cert()
                                    + "&sslkey="
                                    + certUser.keyPk8(),
                            PgServer.CERT_USER,
                            null)) {
                assertEquals(PgServer.CERT_USER, query(c, "select current_user"));
            }

            // Swapping the server certificate at run time: each kind fails where it should.
            pg.installServerCert(pki.serverCert(TestPki.Kind.WRONG_HOST));
            assertTrue(
                    psql(pg, "127.0.0.1", "verify-full", pki.caCert(), "select 1")
                            .stderr()
                            .contains("does not match host name"));
            assertEquals("1", psqlOk(pg, "127.0.0.1", "verify-ca", pki.caCert(), "select 1"));
            assertThrows(
                    SQLException.class,
                    () ->
                            jdbc(
                                            pg,
                                            "sslmode=verify-full&sslrootcert=" + pki.caCert(),
                                            PgServer.APP_USER,
                                            PgServer.APP_PASSWORD)
                                    .close());
            for (TestPki.Kind bad : List.of(TestPki.Kind.EXPIRED, TestPki.Kind.UNTRUSTED)) {
                pg.installServerCert(pki.serverCert(bad));
                assertEquals(pki.serverCert(bad).serial(), presentedSerial(pg));
                assertTrue(
                        psql(pg, "127.0.0.1", "verify-ca", pki.caCert(), "select 1")
                                .stderr()
                                .contains("certificate verify failed"),
                        bad.toString());
            }

            // Rotation: a reissued certificate is what new connections see.
            TestPki.CertKey fresh = pki.reissueServerCert(TestPki.Kind.GOOD);
            pg.installServerCert(fresh);
            assertEquals(fresh.serial(), presentedSerial(pg));
            assertEquals("t", psqlOk(pg, "localhost", "verify-full", pki.caCert(), sslOfMe));
        }
    }

    @Test
    @Timeout(180)
    void sslOnlyRefusesPlainTcpAndReplicatesOverTls() throws Exception {
        TestPki pki = TestPki.create(dir);
        try (PgServer primary =
                        PgServer.startPrimary(PgServer.Options.defaults().ssl(pki).sslOnly());
                PgServer replica = primary.startReplica()) {
            Proc.Result plain = psql(primary, "127.0.0.1", "disable", null, "select 1");
            assertFalse(plain.ok());
            assertTrue(plain.stderr().contains("no encryption"), plain.stderr());
            assertEquals("1", psqlOk(primary, "127.0.0.1", "require", null, "select 1"));

            // The replica was cloned and streams over TLS (hostssl replication), and serves TLS.
            assertEquals(
                    "t",
                    Await.until(
                            "walsender over TLS",
                            Duration.ofSeconds(30),
                            () ->
                                    primary.psql(
                                            PgServer.POSTGRES_DB,
                                            "select coalesce(bool_and(s.ssl), false) from"
                                                    + " pg_stat_replication r join pg_stat_ssl s"
                                                    + " using (pid)"),
                            "t"::equals));
            assertEquals(
                    "t",
                    psqlOk(
                            replica,
                            "localhost",
                            "verify-full",
                            pki.caCert(),
                            "select pg_is_in_recovery()"));
        }
    }

    // ------------------------------------------------------------------------------------------

    private static SslContext server(TestPki pki, TestPki.Kind kind) throws SSLException {
        TestPki.CertKey c = pki.serverCert(kind);
        return SslContextBuilder.forServer(c.cert().toFile(), c.key().toFile())
                .sslProvider(SslProvider.JDK)
                .trustManager(pki.caCert().toFile())
                .clientAuth(ClientAuth.REQUIRE)
                .build();
    }

    private static SslContext client(TestPki pki, TestPki.CertKey clientCert) throws SSLException {
        return SslContextBuilder.forClient()
                .sslProvider(SslProvider.JDK)
                .trustManager(pki.caCert().toFile())
                .keyManager(clientCert.cert().toFile(), clientCert.key().toFile())
                .endpointIdentificationAlgorithm("HTTPS")
                .build();
    }

    private static void assertHandshakeFails(SslContext server, SslContext client, String why) {
        SSLException e =
                assertThrows(SSLException.class, () -> handshake(server, client, "localhost"));
        StringBuilder causes = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            causes.append(t).append('\n');
        }
        assertTrue(causes.toString().contains(why), causes.toString());
    }

    /** Drives two JDK engines against each other in memory until both finish the handshake. */
    private static void handshake(SslContext serverCtx, SslContext clientCtx, String host)
            throws SSLException {
        SSLEngine server = serverCtx.newEngine(ByteBufAllocator.DEFAULT);
        SSLEngine client = clientCtx.newEngine(ByteBufAllocator.DEFAULT, host, 5432);
        ByteBuffer toServer = ByteBuffer.allocate(1 << 17);
        ByteBuffer toClient = ByteBuffer.allocate(1 << 17);
        client.beginHandshake();
        server.beginHandshake();
        for (int i = 0; i < 200; i++) {
            boolean clientDone = step(client, toClient, toServer);
            boolean serverDone = step(server, toServer, toClient);
            if (clientDone && serverDone) {
                return;
            }
        }
        throw new AssertionError("handshake made no progress");
    }

    /** One move of one engine; true when it has nothing left to do for the handshake. */
    private static boolean step(SSLEngine engine, ByteBuffer in, ByteBuffer out)
            throws SSLException {
        ByteBuffer appData = ByteBuffer.allocate(1 << 17);
        switch (engine.getHandshakeStatus()) {
            case NEED_TASK -> {
                for (Runnable task; (task = engine.getDelegatedTask()) != null; ) {
                    task.run();
                }
            }
            case NEED_WRAP -> engine.wrap(ByteBuffer.allocate(0), out);
            case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                in.flip();
                engine.unwrap(in, appData);
                in.compact();
            }
            default -> {
                // Finished, but TLS 1.3 may still have a session ticket or an alert to read.
                if (in.position() > 0) {
                    in.flip();
                    engine.unwrap(in, appData);
                    in.compact();
                }
            }
        }
        return engine.getHandshakeStatus() == HandshakeStatus.NOT_HANDSHAKING && in.position() == 0;
    }

    /** psql as the JVM's user (reads the test's files) over TCP as {@value PgServer#APP_USER}. */
    private static Proc.Result psql(
            PgServer pg, String host, String sslmode, Path root, String sql) {
        String conninfo =
                "host="
                        + host
                        + " port="
                        + pg.port()
                        + " dbname="
                        + PgServer.APP_DB
                        + " user="
                        + PgServer.APP_USER
                        + " sslmode="
                        + sslmode
                        + (root == null ? "" : " sslrootcert='" + root + "'");
        return psqlRun(conninfo, PgServer.APP_PASSWORD, sql);
    }

    private static String psqlOk(PgServer pg, String host, String sslmode, Path root, String sql) {
        Proc.Result r = psql(pg, host, sslmode, root, sql);
        assertTrue(r.ok(), r.stderr());
        return r.stdoutTrimmed();
    }

    private static Proc.Result psqlCert(
            PgServer pg, TestPki pki, TestPki.CertKey cert, String sql) {
        String conninfo =
                "host=127.0.0.1 port="
                        + pg.port()
                        + " dbname="
                        + PgServer.APP_DB
                        + " user="
                        + PgServer.CERT_USER
                        + " sslmode=verify-full"
                        + " sslrootcert='"
                        + pki.caCert()
                        + "'"
                        + " sslcert='"
                        + cert.cert()
                        + "' sslkey='"
                        + cert.key()
                        + "'";
        return psqlRun(conninfo, null, sql);
    }

    private static String psqlCertOk(PgServer pg, TestPki pki, TestPki.CertKey cert, String sql) {
        Proc.Result r = psqlCert(pg, pki, cert, sql);
        assertTrue(r.ok(), r.stderr());
        return r.stdoutTrimmed();
    }

    private static Proc.Result psqlRun(String conninfo, String password, String sql) {
        Proc p =
                Proc.of(
                                PgServer.pgBinDir().resolve("psql").toString(),
                                "-X",
                                "-A",
                                "-t",
                                "-w",
                                "-v",
                                "ON_ERROR_STOP=1",
                                "-d",
                                conninfo,
                                "-c",
                                sql)
                        .cleanPgEnv()
                        .timeout(Duration.ofSeconds(30));
        if (password != null) {
            p.env("PGPASSWORD", password);
        }
        return p.run();
    }

    private static Connection jdbc(PgServer pg, String params, String user, String password)
            throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", user);
        if (password != null) {
            props.setProperty("password", password);
        }
        props.setProperty("connectTimeout", "10");
        return DriverManager.getConnection(pg.jdbcUrl(PgServer.APP_DB) + "?" + params, props);
    }

    private static String query(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            assertTrue(rs.next());
            return rs.getString(1);
        }
    }

    private static BigInteger presentedSerial(PgServer pg) throws Exception {
        return TestPki.presentedSerial(PgServer.HOST, pg.port());
    }
}
