package io.pgrelay.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class UserListTest {

    private static final String SCRAM =
            "SCRAM-SHA-256$4096:86zmph30laJLWnAw2ScC9w==$"
                    + "B3hvNc+4Y0WxOKe2DUvRAdpilawFLb/+9rt5QtMtwLY=:MKiFMX5aFgT5TmvxCOSnZBJ8NwWxpNCIKX+FKHDglwY=";

    @Test
    void parsesAllSecretKindsQuotesAndComments() {
        UserList users =
                UserList.parse(
                        String.join(
                                "\n",
                                "; PgBouncer comment",
                                "# another comment",
                                "",
                                "   ",
                                "\"alice\" \"" + SCRAM + "\"",
                                "\"bob\"\t\"md53175bce1d3201d16594cebf9d7eb3f9d\" \"ignored\" trailing words",
                                "  \"we\"\"ird\" \"pa\"\"ss word\"",
                                "\"carol\" \"\"\r",
                                ""),
                        "userlist.txt");

        assertEquals(Set.of("alice", "bob", "we\"ird", "carol"), users.users());
        assertInstanceOf(Secret.Scram.class, users.secret("alice").orElseThrow());
        assertInstanceOf(Secret.Md5.class, users.secret("bob").orElseThrow());
        assertEquals(Optional.of(new Secret.Plain("pa\"ss word")), users.secret("we\"ird"));
        assertEquals(Optional.of(new Secret.Plain("")), users.secret("carol"));
        assertTrue(users.secret("dave").isEmpty());
    }

    @Test
    void lastEntryForAUserWins() {
        UserList users = UserList.parse("\"a\" \"one\"\n\"a\" \"two\"\n", "f");
        assertEquals(Optional.of(new Secret.Plain("two")), users.secret("a"));
    }

    @Test
    void malformedLineNamesFileAndLine() {
        for (String bad :
                new String[] {
                    "alice \"pw\"",
                    "\"alice\" pw",
                    "\"alice\"",
                    "\"alice\" \"pw",
                    "\"alice\"\"pw\"",
                    "\"\" \"pw\""
                }) {
            IllegalArgumentException error =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    UserList.parse(
                                            "; ok\n\"ok\" \"ok\"\n" + bad + "\n",
                                            "/etc/pgrelay/userlist.txt"),
                            bad);
            assertTrue(
                    error.getMessage().startsWith("/etc/pgrelay/userlist.txt:3: "),
                    error.getMessage());
            assertFalse(
                    error.getMessage().contains("pw"),
                    "must not leak the secret: " + error.getMessage());
        }
    }

    @Test
    void loadsFile(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("userlist.txt");
        Files.writeString(file, "\uFEFF\"jürgen\" \"grüße\"\n");
        assertEquals(Optional.of(new Secret.Plain("grüße")), UserList.load(file).secret("jürgen"));
    }
}
