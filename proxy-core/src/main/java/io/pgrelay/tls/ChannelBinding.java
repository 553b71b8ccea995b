package io.pgrelay.tls;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.Certificate;
import java.security.cert.CertificateEncodingException;
import java.security.cert.X509Certificate;
import java.util.Locale;
import javax.net.ssl.SSLSession;

/**
 * SCRAM's channel binding data of type {@code tls-server-end-point} (RFC 5929): the hash of the
 * server's certificate, with the hash function of the certificate's signature, except that MD5 and
 * SHA-1 become SHA-256. Both ends compute it from the same certificate, so a man in the middle who
 * terminates TLS with another certificate cannot relay a SCRAM-SHA-256-PLUS proof.
 */
public final class ChannelBinding {

    public static final String TYPE = "tls-server-end-point";

    private ChannelBinding() {}

    /** From the certificate this side presented in {@code session}; null when there is none. */
    public static byte[] ofLocalCertificate(SSLSession session) {
        Certificate[] local = session.getLocalCertificates();
        return local == null || local.length == 0 ? null : endPointHash(local[0]);
    }

    /**
     * The hash, or null when the signature algorithm names no hash (RSASSA-PSS, EdDSA): as
     * PostgreSQL, pgrelay then does not offer channel binding.
     */
    static byte[] endPointHash(Certificate certificate) {
        if (!(certificate instanceof X509Certificate x509)) {
            return null;
        }
        String sig = x509.getSigAlgName().toUpperCase(Locale.ROOT);
        int with = sig.indexOf("WITH");
        if (with <= 0) {
            return null;
        }
        String hash =
                switch (sig.substring(0, with)) {
                    case "MD5", "SHA1", "SHA256" -> "SHA-256";
                    case "SHA224" -> "SHA-224";
                    case "SHA384" -> "SHA-384";
                    case "SHA512" -> "SHA-512";
                    default -> null;
                };
        if (hash == null) {
            return null;
        }
        try {
            return MessageDigest.getInstance(hash).digest(x509.getEncoded());
        } catch (NoSuchAlgorithmException | CertificateEncodingException e) {
            return null;
        }
    }
}
