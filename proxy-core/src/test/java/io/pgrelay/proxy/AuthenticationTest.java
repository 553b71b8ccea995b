package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.pgrelay.auth.Md5Password;
import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.postgresql.util.PSQLException;

/** Each client auth_type, and pgrelay's own login to PostgreSQL with each kind of secret. */
class AuthenticationTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    static String appScramSecret;

    @BeforeAll
    static void readSecret() {
        appScramSecret =
                servers.primary()
                        .psql(
                                PgServer.POSTGRES_DB,
                                "select rolpassword from pg_authid where rolname = 'app'")
                        .trim();
    }

    private static void assertWorks(RelayFixture relay, String user, String password)
            throws Exception {
        try (Connection c = relay.connect(user, password)) {
            assertEquals(user, one(c, "select current_user"));
        }
    }

    private static void assertRejected(RelayFixture relay, String user, String password) {
        PSQLException e = assertThrows(PSQLException.class, () -> relay.connect(user, password));
        assertEquals("28P01", e.getSQLState(), e.getMessage());
    }

    @Test
    void scramWithPlainAndMd5AndScramSecrets() throws Exception {
        String users =
                "\"app\" \""
                        + appScramSecret
                        + "\"\n"
                        + "\"md5user\" \""
                        + Md5Password.encode("md5user", "md5-secret")
                        + "\"\n"
                        + "\"postgres\" \"postgres\"\n";
        try (RelayFixture relay = RelayFixture.builder(servers.primary()).userlist(users).start()) {
            // SCRAM secret only: the ClientKey from the client's proof logs pgrelay in to
            // PostgreSQL.
            assertWorks(relay, "app", "app-secret");
            assertWorks(relay, "postgres", "postgres");
            assertRejected(relay, "app", "wrong");
            // An md5 secret cannot answer SCRAM: rejected like a wrong password.
            assertRejected(relay, "md5user", "md5-secret");
        }
    }

    @Test
    void md5ClientAuth() throws Exception {
        String users =
                "\"app\" \""
                        + appScramSecret
                        + "\"\n"
                        + "\"md5user\" \""
                        + Md5Password.encode("md5user", "md5-secret")
                        + "\"\n"
                        + "\"postgres\" \"postgres\"\n";
        try (RelayFixture relay =
                RelayFixture.builder(servers.primary())
                        .userlist(users)
                        .set("auth.auth_type", "md5")
                        .start()) {
            assertWorks(relay, "md5user", "md5-secret");
            assertWorks(relay, "postgres", "postgres");
            // md5 mode asks users with a SCRAM secret for SCRAM.
            assertWorks(relay, "app", "app-secret");
            assertRejected(relay, "md5user", "nope");
            assertRejected(relay, "ghost", "nope");
        }
    }

    @Test
    void plainAndTrust() throws Exception {
        try (RelayFixture relay =
                RelayFixture.builder(servers.primary()).set("auth.auth_type", "plain").start()) {
            assertWorks(relay, "app", "app-secret");
            assertWorks(relay, "md5user", "md5-secret");
            assertRejected(relay, "app", "nope");
        }
        try (RelayFixture relay =
                RelayFixture.builder(servers.primary()).set("auth.auth_type", "trust").start()) {
            assertWorks(relay, "app", "anything");
            assertRejected(relay, "ghost", "anything");
        }
    }

    @Test
    void scramSecretWithoutPriorScramLoginCannotReachTheServer() throws Exception {
        String users = "\"app\" \"" + appScramSecret + "\"\n";
        try (RelayFixture relay =
                RelayFixture.builder(servers.primary())
                        .userlist(users)
                        .set("auth.auth_type", "trust")
                        .start()) {
            PSQLException e = assertThrows(PSQLException.class, () -> relay.connect("app", "x"));
            assertEquals("08006", e.getSQLState(), e.getMessage());
        }
    }

    @Test
    void unknownStartupParameterIsReportedLikePostgreSQL() throws Exception {
        try (RelayFixture relay = RelayFixture.builder(servers.primary()).start()) {
            PSQLException e =
                    assertThrows(
                            PSQLException.class,
                            () -> {
                                try (Connection c =
                                        relay.connect(
                                                relay.writePort(),
                                                PgServer.APP_DB,
                                                "app",
                                                "app-secret",
                                                Map.of(
                                                        "options",
                                                        "-c no_such_setting_xyz=1",
                                                        "prepareThreshold",
                                                        "0"))) {
                                    one(c, "select 1");
                                }
                            });
            assertEquals("42704", e.getSQLState(), e.getMessage());
        }
    }
}
