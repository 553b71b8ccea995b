package io.pgrelay.tls;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A certificate chain and its private key from PEM files, checked before they are used: the key
 * must be unencrypted PKCS#8 ("BEGIN PRIVATE KEY", what {@code openssl genpkey} and {@code openssl
 * req -newkey} write) and must belong to the first certificate. Errors name the setting and file,
 * never the key's content.
 */
record KeyMaterial(PrivateKey key, X509Certificate[] chain) {

    private static final Logger log = LoggerFactory.getLogger(KeyMaterial.class);
    private static final Pattern PKCS8 =
            Pattern.compile(
                    "-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\\s]+)-----END PRIVATE KEY-----");

    static KeyMaterial load(String certSetting, Path certFile, String keySetting, Path keyFile) {
        X509Certificate[] chain = certificates(certSetting, certFile);
        PrivateKey key = privateKey(keySetting, keyFile);
        if (!belongTogether(key, chain[0])) {
            throw new TlsSetupException(
                    keySetting
                            + " "
                            + keyFile
                            + ": the key does not belong to the certificate in "
                            + certSetting
                            + " "
                            + certFile);
        }
        Date now = new Date();
        if (chain[0].getNotAfter().before(now) || chain[0].getNotBefore().after(now)) {
            // Loaded anyway, as PostgreSQL and PgBouncer do: the peer decides what to accept.
            log.warn(
                    "{} {}: the certificate is valid only from {} to {}",
                    certSetting,
                    certFile,
                    chain[0].getNotBefore().toInstant(),
                    chain[0].getNotAfter().toInstant());
        }
        return new KeyMaterial(key, chain);
    }

    /** Every certificate in a PEM file (a chain, or CAs to trust). */
    static X509Certificate[] certificates(String setting, Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            List<X509Certificate> certs =
                    CertificateFactory.getInstance("X.509").generateCertificates(in).stream()
                            .map(X509Certificate.class::cast)
                            .toList();
            if (certs.isEmpty()) {
                throw new TlsSetupException(setting + " " + file + ": no certificate in the file");
            }
            return certs.toArray(X509Certificate[]::new);
        } catch (IOException e) {
            throw new TlsSetupException(setting + " " + file + ": cannot read: " + e, e);
        } catch (CertificateException e) {
            throw new TlsSetupException(
                    setting + " " + file + ": not a PEM certificate: " + e.getMessage(), e);
        }
    }

    private static PrivateKey privateKey(String setting, Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new TlsSetupException(setting + " " + file + ": cannot read: " + e, e);
        }
        Matcher m = PKCS8.matcher(text);
        if (!m.find()) {
            throw new TlsSetupException(
                    setting
                            + " "
                            + file
                            + ": expected an unencrypted PKCS#8 key (BEGIN PRIVATE KEY); convert"
                            + " with: openssl pkcs8 -topk8 -nocrypt -in old.key -out new.key");
        }
        byte[] der;
        try {
            der = Base64.getMimeDecoder().decode(m.group(1));
        } catch (IllegalArgumentException e) {
            throw new TlsSetupException(setting + " " + file + ": malformed PEM");
        }
        for (String algorithm : new String[] {"RSA", "EC", "Ed25519", "Ed448"}) {
            try {
                return KeyFactory.getInstance(algorithm)
                        .generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (GeneralSecurityException tryNext) {
                // the PKCS#8 header names the algorithm; KeyFactory only says "wrong one"
            }
        }
        throw new TlsSetupException(setting + " " + file + ": not an RSA, EC or EdDSA private key");
    }

    /** Signs with the key and checks with the certificate's public key. */
    private static boolean belongTogether(PrivateKey key, X509Certificate cert) {
        String algorithm =
                switch (key.getAlgorithm()) {
                    case "RSA" -> "SHA256withRSA";
                    case "EC" -> "SHA256withECDSA";
                    default -> key.getAlgorithm(); // Ed25519, Ed448
                };
        try {
            byte[] probe = "pgrelay key check".getBytes(StandardCharsets.US_ASCII);
            Signature signer = Signature.getInstance(algorithm);
            signer.initSign(key);
            signer.update(probe);
            Signature verifier = Signature.getInstance(algorithm);
            verifier.initVerify(cert.getPublicKey());
            verifier.update(probe);
            return verifier.verify(signer.sign());
        } catch (GeneralSecurityException e) {
            return false;
        }
    }
}
