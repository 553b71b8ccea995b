package io.pgrelay.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.pgrelay.admin.AdminCommand.Verb;
import java.util.List;
import org.junit.jupiter.api.Test;

class AdminCommandTest {

    @Test
    void splitsAtSemicolonsOutsideQuotes() {
        assertEquals(
                List.of("SHOW POOLS", "SHOW STATS"), AdminCommand.split("SHOW POOLS; SHOW STATS;"));
        assertEquals(
                List.of("SET a = 'x;y'", "RELOAD"), AdminCommand.split("SET a = 'x;y'; RELOAD"));
        assertEquals(List.of("SET a = 'it''s;'"), AdminCommand.split("SET a = 'it''s;'"));
        assertEquals(List.of("PAUSE \"a;b\""), AdminCommand.split("PAUSE \"a;b\";"));
        assertEquals(List.of(), AdminCommand.split(" ; ;\n"));
        assertEquals(List.of(), AdminCommand.split(""));
    }

    @Test
    void parsesVerbAndArgument() {
        assertEquals(new AdminCommand(Verb.SHOW, "pools", null), AdminCommand.parse("sHoW PoOlS"));
        assertEquals(new AdminCommand(Verb.PAUSE, null, null), AdminCommand.parse("pause"));
        assertEquals(new AdminCommand(Verb.PAUSE, "App", null), AdminCommand.parse("PAUSE App"));
        assertEquals(
                new AdminCommand(Verb.KILL, "my db", null), AdminCommand.parse("KILL \"my db\""));
        assertEquals(
                new AdminCommand(Verb.RESUME, "a\"b", null),
                AdminCommand.parse("RESUME \"a\"\"b\""));
        assertEquals(
                new AdminCommand(Verb.KILL_CLIENT, "17", null),
                AdminCommand.parse("kill_client 17"));
        assertEquals(
                new AdminCommand(Verb.SHUTDOWN, "WAIT_FOR_SERVERS", null),
                AdminCommand.parse("shutdown wait_for_servers"));
    }

    @Test
    void parsesSetForms() {
        assertEquals(
                new AdminCommand(Verb.SET, "default_pool_size", "40"),
                AdminCommand.parse("SET default_pool_size = 40"));
        assertEquals(
                new AdminCommand(Verb.SET, "default_pool_size", "40"),
                AdminCommand.parse("set default_pool_size TO 40"));
        assertEquals(
                new AdminCommand(Verb.SET, "server_reset_query", "DISCARD ALL"),
                AdminCommand.parse("SET server_reset_query='DISCARD ALL'"));
        assertEquals(
                new AdminCommand(Verb.SET, "admin_users", "o'neil, bob"),
                AdminCommand.parse("SET admin_users = 'o''neil, bob'"));
        assertEquals(
                new AdminCommand(Verb.SET, "query_timeout", ""),
                AdminCommand.parse("SET query_timeout = ''"));
        assertEquals(
                new AdminCommand(Verb.SET, "listen_addr", "10.0.0.1:6432"),
                AdminCommand.parse("SET listen_addr = 10.0.0.1:6432"));
    }

    @Test
    void rejectsWhatPgBouncerRejects() {
        for (String bad :
                List.of(
                        "",
                        "pools",
                        "SHOW",
                        "SHOW POOLS NOW",
                        "SHOW 'pools'",
                        "SHOW nothing",
                        "RELOAD now",
                        "SHUTDOWN later",
                        "SET",
                        "SET a",
                        "SET a =",
                        "SET a b c",
                        "SET = 1",
                        "SET a = = 1",
                        "SET '' = 1",
                        "SET a = 'open",
                        "SELECT 1",
                        "KILL_CLIENT",
                        "KILL_CLIENT x1",
                        "KILL_CLIENT \"\"",
                        "DISABLE",
                        "ENABLE")) {
            AdminException e =
                    assertThrows(AdminException.class, () -> AdminCommand.parse(bad), bad);
            assertEquals(AdminException.SYNTAX_ERROR, e.sqlState(), bad);
        }
        assertEquals(
                "0A000",
                assertThrows(AdminException.class, () -> AdminCommand.parse("SHOW MEM"))
                        .sqlState());
    }
}
