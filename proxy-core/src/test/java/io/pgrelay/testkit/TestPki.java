package io.pgrelay.testkit;

import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A throw-away certificate authority for TLS tests: PEM files in a directory of the test's choice.
 *
 * <pre>{@code
 * TestPki pki = TestPki.create(tempDir);
 * TestPki.CertKey server = pki.serverCert(TestPki.Kind.GOOD);   // localhost + 127.0.0.1
 * SslContextBuilder.forServer(server.cert().toFile(), server.key().toFile());
 * TestPki.CertKey app = pki.clientCert("app");                   // CN=app, signed by the CA
 * String jdbc = "...?sslmode=verify-full&sslrootcert=" + pki.caCert()
 *         + "&sslcert=" + app.cert() + "&sslkey=" + app.keyPk8();
 * }</pre>
 *
 * <p>Files written by {@link #create} (all certificates PEM, "BEGIN CERTIFICATE"):
 *
 * <ul>
 *   <li>{@code ca.crt/.key} — the trusted test CA; {@code untrusted-ca.crt/.key} — a second CA that
 *       no test trusts
 *   <li>{@code server-good.*} — SAN DNS:localhost, IP:127.0.0.1; {@code server-wrong-host.*} — SAN
 *       DNS:wrong.example only; {@code server-expired.*} — localhost/127.0.0.1 but notAfter
 *       yesterday; {@code server-untrusted.*} — localhost/127.0.0.1 signed by the untrusted CA
 *   <li>on demand: {@code client-<user>.*} ({@link #clientCert}) and {@code
 *       client-<user>-untrusted.*} ({@link #untrustedClientCert}), CN=user
 * </ul>
 *
 * <p>Each {@code .key} is an unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"), the one format that
 * Netty's SslContextBuilder, the JDK, OpenSSL/libpq and PostgreSQL all read; each {@code .pk8} is
 * the same key as PKCS#8 DER, which pgjdbc's default {@code sslkey} loader (LibPQFactory) needs.
 * Key files are mode 0600: libpq and PostgreSQL refuse group- or world-readable keys. They belong
 * to the JVM's user; a PostgreSQL running as another OS user gets copies ({@link
 * PgServer.Options#ssl}).
 *
 * <p>Keys are EC P-256 (generated in microseconds, where RSA 2048 takes ~100 ms each), signatures
 * SHA256withECDSA. Certificates are valid from one hour ago (clock skew) for 30 days.
 */
public final class TestPki {

    /** The server certificates {@link #create} writes. */
    public enum Kind {
        /** SAN DNS:localhost and IP:127.0.0.1, signed by the CA: verify-full passes. */
        GOOD("server-good"),
        /** SAN DNS:wrong.example only, signed by the CA: verify-ca passes, verify-full fails. */
        WRONG_HOST("server-wrong-host"),
        /** Like GOOD but expired yesterday: every verifying client rejects it. */
        EXPIRED("server-expired"),
        /** Like GOOD but signed by the untrusted CA: verify-ca and verify-full fail. */
        UNTRUSTED("server-untrusted");

        private final String baseName;

        Kind(String baseName) {
            this.baseName = baseName;
        }
    }

    /**
     * A certificate and its key: {@code cert} (PEM), {@code key} (PKCS#8 PEM, 0600), {@code keyPk8}
     * (PKCS#8 DER, 0600, for pgjdbc) and the serial number of the certificate as written.
     */
    public record CertKey(Path cert, Path key, Path keyPk8, BigInteger serial) {

        /** Parses {@link #cert()} (as it is on disk now). */
        public X509Certificate certificate() {
            return readCertificate(cert);
        }
    }

    public static final String WRONG_HOST_NAME = "wrong.example";

    private static final String SIG_ALG = "SHA256withECDSA";
    private static final Duration VALIDITY = Duration.ofDays(30);
    private static final Set<PosixFilePermission> KEY_MODE =
            PosixFilePermissions.fromString("rw-------");
    private static final Set<PosixFilePermission> CERT_MODE =
            PosixFilePermissions.fromString("rw-r--r--");

    private final Path dir;
    private final SecureRandom random = new SecureRandom();
    private final Issuer ca;
    private final Issuer untrustedCa;
    private final Map<Kind, CertKey> servers = new EnumMap<>(Kind.class);
    private final Map<String, CertKey> clients = new ConcurrentHashMap<>();

    /** A CA's signing material, kept in memory so leaves are signed without re-reading PEMs. */
    private record Issuer(X509Certificate cert, PrivateKey key, CertKey files) {}

    private TestPki(Path dir) {
        this.dir = dir;
        this.ca = newCa("ca", "pgrelay test CA");
        this.untrustedCa = newCa("untrusted-ca", "pgrelay untrusted test CA");
        for (Kind kind : Kind.values()) {
            servers.put(kind, issueServer(kind));
        }
    }

    /**
     * Creates {@code dir} if needed and writes the CAs and the four server certificates into it.
     */
    public static TestPki create(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new TestPki(dir);
    }

    /** The directory holding the files. */
    public Path dir() {
        return dir;
    }

    /** {@code ca.crt}: the trust anchor for sslrootcert / trustManager / ssl_ca_file. */
    public Path caCert() {
        return ca.files().cert();
    }

    /** {@code ca.crt} + {@code ca.key}. */
    public CertKey ca() {
        return ca.files();
    }

    /** {@code untrusted-ca.crt} + key: a CA nobody trusts (e.g. as a wrong sslrootcert). */
    public CertKey untrustedCa() {
        return untrustedCa.files();
    }

    /**
     * The current server certificate of that kind (after {@link #reissueServerCert} the new one).
     */
    public synchronized CertKey serverCert(Kind kind) {
        return servers.get(kind);
    }

    /**
     * Replaces the files of {@code kind} in place with a new key and a certificate with a new
     * serial (same names, same SANs, same issuer) — for certificate reload tests. Each file is
     * swapped atomically (written aside, then renamed), key first, so a reader never sees a torn
     * file; trigger the reload after this returns, since cert and key are two renames.
     */
    public synchronized CertKey reissueServerCert(Kind kind) {
        CertKey fresh = issueServer(kind);
        servers.put(kind, fresh);
        return fresh;
    }

    /** {@code client-<user>.crt/.key/.pk8}: CN={@code user}, signed by the CA (created once). */
    public CertKey clientCert(String user) {
        return clients.computeIfAbsent(user, u -> issueClient(ca, u, "client-" + u));
    }

    /** {@code client-<user>-untrusted.*}: CN={@code user}, signed by the untrusted CA. */
    public CertKey untrustedClientCert(String user) {
        return clients.computeIfAbsent(
                user + "\0untrusted",
                u -> issueClient(untrustedCa, user, "client-" + user + "-untrusted"));
    }

    /** Parses a PEM (or DER) certificate file. */
    public static X509Certificate readCertificate(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return (X509Certificate)
                    CertificateFactory.getInstance("X.509").generateCertificate(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("not a certificate: " + file, e);
        }
    }

    // ------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------

    private Issuer newCa(String baseName, String cn) {
        KeyPair kp = newKeyPair();
        Instant now = Instant.now();
        X500Name name = new X500Name("CN=" + cn);
        try {
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b =
                    new JcaX509v3CertificateBuilder(
                                    name,
                                    newSerial(),
                                    Date.from(now.minus(Duration.ofHours(1))),
                                    Date.from(now.plus(VALIDITY)),
                                    name,
                                    kp.getPublic())
                            .addExtension(
                                    Extension.basicConstraints, true, new BasicConstraints(true))
                            .addExtension(
                                    Extension.keyUsage,
                                    true,
                                    new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
                            .addExtension(
                                    Extension.subjectKeyIdentifier,
                                    false,
                                    ext.createSubjectKeyIdentifier(kp.getPublic()));
            X509Certificate cert = sign(b, kp.getPrivate());
            return new Issuer(cert, kp.getPrivate(), write(baseName, cert, kp.getPrivate()));
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalStateException("cannot create CA " + cn, e);
        }
    }

    private CertKey issueServer(Kind kind) {
        Instant now = Instant.now();
        Instant notBefore = now.minus(Duration.ofHours(1));
        Instant notAfter = now.plus(VALIDITY);
        Issuer issuer = ca;
        List<GeneralName> sans =
                List.of(
                        new GeneralName(GeneralName.dNSName, "localhost"),
                        new GeneralName(GeneralName.iPAddress, "127.0.0.1"));
        String cn = "localhost";
        switch (kind) {
            case GOOD -> {}
            case WRONG_HOST -> {
                sans = List.of(new GeneralName(GeneralName.dNSName, WRONG_HOST_NAME));
                cn = WRONG_HOST_NAME;
            }
            case EXPIRED -> {
                notBefore = now.minus(Duration.ofDays(2));
                notAfter = now.minus(Duration.ofDays(1));
            }
            case UNTRUSTED -> issuer = untrustedCa;
        }
        return issueLeaf(
                issuer,
                kind.baseName,
                cn,
                notBefore,
                notAfter,
                new GeneralNames(sans.toArray(GeneralName[]::new)),
                KeyPurposeId.id_kp_serverAuth);
    }

    private CertKey issueClient(Issuer issuer, String user, String baseName) {
        Instant now = Instant.now();
        return issueLeaf(
                issuer,
                baseName,
                user,
                now.minus(Duration.ofHours(1)),
                now.plus(VALIDITY),
                null,
                KeyPurposeId.id_kp_clientAuth);
    }

    private CertKey issueLeaf(
            Issuer issuer,
            String baseName,
            String cn,
            Instant notBefore,
            Instant notAfter,
            GeneralNames sans,
            KeyPurposeId purpose) {
        KeyPair kp = newKeyPair();
        try {
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b =
                    new JcaX509v3CertificateBuilder(
                                    issuer.cert(),
                                    newSerial(),
                                    Date.from(notBefore),
                                    Date.from(notAfter),
                                    new X500Name("CN=" + cn),
                                    kp.getPublic())
                            .addExtension(
                                    Extension.basicConstraints, true, new BasicConstraints(false))
                            .addExtension(
                                    Extension.keyUsage,
                                    true,
                                    new KeyUsage(KeyUsage.digitalSignature))
                            .addExtension(
                                    Extension.extendedKeyUsage,
                                    false,
                                    new ExtendedKeyUsage(purpose))
                            .addExtension(
                                    Extension.subjectKeyIdentifier,
                                    false,
                                    ext.createSubjectKeyIdentifier(kp.getPublic()))
                            .addExtension(
                                    Extension.authorityKeyIdentifier,
                                    false,
                                    ext.createAuthorityKeyIdentifier(issuer.cert()));
            if (sans != null) {
                b.addExtension(Extension.subjectAlternativeName, false, sans);
            }
            return write(baseName, sign(b, issuer.key()), kp.getPrivate());
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalStateException("cannot issue " + baseName, e);
        }
    }

    private static X509Certificate sign(X509v3CertificateBuilder b, PrivateKey signer)
            throws GeneralSecurityException {
        try {
            // No BC provider registered: signing and parsing use the JDK's own providers.
            return new JcaX509CertificateConverter()
                    .getCertificate(b.build(new JcaContentSignerBuilder(SIG_ALG).build(signer)));
        } catch (OperatorCreationException e) {
            throw new GeneralSecurityException(e);
        }
    }

    private KeyPair newKeyPair() {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"), random);
            return g.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Positive, 64 random bits: unique enough, and what reload tests compare. */
    private BigInteger newSerial() {
        return new BigInteger(64, random).setBit(63);
    }

    private CertKey write(String baseName, X509Certificate cert, PrivateKey key)
            throws IOException, GeneralSecurityException {
        Path certFile = dir.resolve(baseName + ".crt");
        Path keyFile = dir.resolve(baseName + ".key");
        Path pk8File = dir.resolve(baseName + ".pk8");
        // getEncoded() of a JDK private key is PKCS#8 DER: PEM-wrap it for everyone but pgjdbc.
        byte[] pkcs8 = key.getEncoded();
        writeAtomically(pk8File, pkcs8, KEY_MODE);
        writeAtomically(keyFile, pem("PRIVATE KEY", pkcs8), KEY_MODE);
        writeAtomically(certFile, pem("CERTIFICATE", cert.getEncoded()), CERT_MODE);
        return new CertKey(certFile, keyFile, pk8File, cert.getSerialNumber());
    }

    private static byte[] pem(String type, byte[] der) {
        String body = Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der);
        return ("-----BEGIN " + type + "-----\n" + body + "\n-----END " + type + "-----\n")
                .getBytes(StandardCharsets.US_ASCII);
    }

    /** Written aside with its final mode, then renamed: readers see the old or the new file. */
    private static void writeAtomically(Path file, byte[] content, Set<PosixFilePermission> mode)
            throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(mode));
        Files.write(tmp, content);
        // createFile's mode is filtered by the umask; set it again so it is exact.
        Files.setPosixFilePermissions(tmp, mode);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * Serial of the certificate a PostgreSQL-protocol server (PostgreSQL, pgrelay) presents to a
     * new connection now: SSLRequest by hand, then a JDK handshake that trusts anything (it only
     * reads the certificate).
     */
    public static BigInteger presentedSerial(String host, int port) throws Exception {
        try (Socket plain = new Socket(host, port)) {
            plain.setSoTimeout(10_000);
            DataOutputStream out = new DataOutputStream(plain.getOutputStream());
            out.writeInt(8);
            out.writeInt(80877103); // SSLRequest code
            out.flush();
            if (new DataInputStream(plain.getInputStream()).readByte() != 'S') {
                throw new IllegalStateException(host + ":" + port + " refused TLS");
            }
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, InsecureTrustManagerFactory.INSTANCE.getTrustManagers(), null);
            try (SSLSocket tls =
                    (SSLSocket) ctx.getSocketFactory().createSocket(plain, host, port, true)) {
                tls.startHandshake();
                return ((X509Certificate) tls.getSession().getPeerCertificates()[0])
                        .getSerialNumber();
            }
        }
    }
}
