package io.pgrelay.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.auth.Md5Password;
import io.pgrelay.auth.Secret;
import io.pgrelay.protocol.SqlState;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** What auth_query's first row means. */
class SecretLookupTest {

    @Test
    void noRowNullOrEmptyPasswordMeanNoSecret() throws Exception {
        assertEquals(Optional.empty(), SecretLookup.secretFrom(null));
        assertEquals(Optional.empty(), SecretLookup.secretFrom(Arrays.asList("bob", null)));
        assertEquals(Optional.empty(), SecretLookup.secretFrom(Arrays.asList(null, null)));
        assertEquals(Optional.empty(), SecretLookup.secretFrom(List.of("bob", "")));
    }

    @Test
    void theSecondColumnIsTheSecretOfAnyKind() throws Exception {
        String scram =
                Secret.Scram.fromPassword("pw", "salt".getBytes(StandardCharsets.UTF_8), 4096)
                        .encode();
        assertInstanceOf(
                Secret.Scram.class, SecretLookup.secretFrom(List.of("bob", scram)).orElseThrow());
        String md5 = Md5Password.encode("bob", "pw");
        assertEquals(
                new Secret.Md5(md5), SecretLookup.secretFrom(List.of("bob", md5)).orElseThrow());
        assertEquals(
                new Secret.Plain("pw"),
                SecretLookup.secretFrom(List.of("bob", "pw")).orElseThrow());
    }

    @Test
    void aRowWithoutTheSecretColumnIsAFailedLookupNotAnUnknownUser() {
        AuthQueryException e =
                assertThrows(
                        AuthQueryException.class, () -> SecretLookup.secretFrom(List.of("bob")));
        assertEquals(SqlState.INVALID_AUTHORIZATION_SPECIFICATION, e.sqlState());
        assertTrue(e.getMessage().contains("usename, passwd"), e.getMessage());
    }
}
