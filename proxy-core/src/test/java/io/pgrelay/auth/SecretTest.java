package io.pgrelay.auth;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import java.util.Base64;
import org.junit.jupiter.api.Test;

class SecretTest {

    private static final String VALID_SCRAM =
            "SCRAM-SHA-256$4096:86zmph30laJLWnAw2ScC9w==$"
                    + "B3hvNc+4Y0WxOKe2DUvRAdpilawFLb/+9rt5QtMtwLY=:MKiFMX5aFgT5TmvxCOSnZBJ8NwWxpNCIKX+FKHDglwY=";

    @Test
    void parsesScramSecretWeDerived() {
        byte[] salt = Base64.getDecoder().decode("W22ZaJ0SNY7soEsUEjb6gQ==");
        Secret.Scram derived = Secret.Scram.fromPassword("pencil", salt, 4096);
        String text = derived.encode();
        assertEquals(derived, Secret.parse(text));
        Secret.Scram parsed = (Secret.Scram) Secret.parse(text);
        assertEquals(4096, parsed.iterations());
        assertArrayEquals(salt, parsed.salt());
        // RFC 7677's ClientKey and ServerKey for "pencil" give this StoredKey and ServerKey
        assertEquals(
                "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
                        + "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
                text);
    }

    @Test
    void parsesMd5OnlyWhenExact() {
        assertInstanceOf(Secret.Md5.class, Secret.parse("md53175bce1d3201d16594cebf9d7eb3f9d"));
        for (String plain :
                new String[] {
                    "md53175BCE1D3201D16594CEBF9D7EB3F9D",
                    "md53175bce1d3201d16594cebf9d7eb3f9",
                    "md53175bce1d3201d16594cebf9d7eb3f9d0",
                    "md5",
                    "3175bce1d3201d16594cebf9d7eb3f9d"
                }) {
            assertInstanceOf(Secret.Plain.class, Secret.parse(plain), plain);
        }
    }

    @Test
    void malformedScramIsPlain() {
        assertInstanceOf(Secret.Scram.class, Secret.parse(VALID_SCRAM));
        for (String plain :
                new String[] {
                    VALID_SCRAM.replace("$4096:", "$0:"),
                    VALID_SCRAM.replace("$4096:", "$x:"),
                    VALID_SCRAM.replace("SCRAM-SHA-256", "SCRAM-SHA-1"),
                    VALID_SCRAM.replace("86zmph30laJLWnAw2ScC9w==", ""),
                    VALID_SCRAM.replace("86zmph30laJLWnAw2ScC9w==", "86zm*h30"),
                    VALID_SCRAM.substring(0, VALID_SCRAM.lastIndexOf(':')),
                    VALID_SCRAM + "$extra",
                    VALID_SCRAM.replace(
                            "B3hvNc+4Y0WxOKe2DUvRAdpilawFLb/+9rt5QtMtwLY=", "B3hvNc+4Y0Wx")
                }) {
            Secret secret = Secret.parse(plain);
            assertInstanceOf(Secret.Plain.class, secret, plain);
            assertEquals(plain, ((Secret.Plain) secret).password());
        }
    }

    @Test
    void toStringHidesSecrets() {
        assertFalse(Secret.parse("hunter2").toString().contains("hunter2"));
        assertFalse(
                Secret.parse("md53175bce1d3201d16594cebf9d7eb3f9d").toString().contains("3175"));
        assertFalse(Secret.parse(VALID_SCRAM).toString().contains("B3hv"));
    }
}
