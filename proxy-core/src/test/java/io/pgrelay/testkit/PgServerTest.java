package io.pgrelay.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Exercises the test kit against real PostgreSQL 15 processes. */
class PgServerTest {

    @Test
    @Timeout(180)
    void primaryAndReplica() throws Exception {
        Path primaryDir;
        Path replicaDir;
        try (PgServer primary = PgServer.startPrimary();
                PgServer replica = primary.startReplica()) {
            primaryDir = primary.baseDir();
            replicaDir = replica.baseDir();
            assertNotEquals(primary.port(), replica.port());
            assertTrue(primary.isRunning());
            assertTrue(replica.isReplica());

            assertEquals("f", primary.psql(PgServer.POSTGRES_DB, "select pg_is_in_recovery()"));
            assertEquals("t", replica.psql(PgServer.POSTGRES_DB, "select pg_is_in_recovery()"));
            assertEquals("200", primary.psql(PgServer.POSTGRES_DB, "show max_connections"));
            assertEquals("off", primary.psql(PgServer.POSTGRES_DB, "show fsync"));
            assertEquals(
                    "off", primary.psql(PgServer.POSTGRES_DB, "show ssl"), "TLS only on request");

            // Passwords are stored as requested: md5 for md5user, SCRAM for the others.
            assertEquals(
                    "md5user|t\napp|f\npostgres|f\nreplicator|f",
                    primary.psql(
                            PgServer.POSTGRES_DB,
                            "select rolname, rolpassword like 'md5%' from pg_authid"
                                    + " where rolname in ('postgres','app','md5user','replicator')"
                                    + " order by rolname = 'md5user' desc, rolname"));
            assertEquals(
                    PgServer.APP_USER,
                    primary.psql(
                            PgServer.POSTGRES_DB,
                            "select pg_get_userbyid(datdba) from pg_database where datname = 'appdb'"));

            // Multi-statement input with psql; the replica sees it (bounded poll).
            primary.psql(
                    PgServer.APP_DB,
                    "create table t(id int primary key, v text);\n"
                            + "insert into t select g, 'row ' || g from generate_series(1, 3) g;\n"
                            + "grant select on t to public;");
            String count =
                    Await.until(
                            "replica to see table t",
                            Duration.ofSeconds(30),
                            () -> replica.psql(PgServer.APP_DB, "select count(*) from t"),
                            "3"::equals);
            assertEquals("3", count);
            assertThrows(
                    Proc.ProcException.class,
                    () -> replica.psql(PgServer.APP_DB, "insert into t values (4, 'read-only')"));

            // JDBC logins over TCP: scram (app), md5 (md5user), on primary and replica.
            assertEquals(
                    PgServer.APP_USER,
                    currentUser(
                            primary.connect(
                                    PgServer.APP_DB, PgServer.APP_USER, PgServer.APP_PASSWORD)));
            assertEquals(
                    PgServer.MD5_USER,
                    currentUser(
                            primary.connect(
                                    PgServer.APP_DB, PgServer.MD5_USER, PgServer.MD5_PASSWORD)));
            assertEquals(
                    PgServer.SUPERUSER,
                    currentUser(
                            primary.connect(
                                    PgServer.POSTGRES_DB,
                                    PgServer.SUPERUSER,
                                    PgServer.SUPERUSER_PASSWORD)));
            assertEquals(
                    PgServer.APP_USER,
                    currentUser(
                            replica.connect(
                                    PgServer.APP_DB, PgServer.APP_USER, PgServer.APP_PASSWORD)));
            assertEquals(
                    PgServer.MD5_USER,
                    currentUser(
                            replica.connect(
                                    PgServer.APP_DB, PgServer.MD5_USER, PgServer.MD5_PASSWORD)));
            assertThrows(
                    SQLException.class,
                    () -> primary.connect(PgServer.APP_DB, PgServer.APP_USER, "wrong").close());
            assertThrows(
                    SQLException.class,
                    () -> primary.connect(PgServer.APP_DB, PgServer.MD5_USER, "wrong").close());

            try (Connection c =
                            primary.connect(
                                    PgServer.APP_DB, PgServer.APP_USER, PgServer.APP_PASSWORD);
                    Statement st = c.createStatement();
                    ResultSet rs =
                            st.executeQuery("select string_agg(v, ',' order by id) from t")) {
                assertTrue(rs.next());
                assertEquals("row 1,row 2,row 3", rs.getString(1));
            }
            assertTrue(Files.size(primary.logFile()) > 0, "server log is written");
        }
        assertFalse(Files.exists(primaryDir), "primary dir deleted");
        assertFalse(Files.exists(replicaDir), "replica dir deleted");
    }

    @Test
    @Timeout(120)
    void killAndRestart() throws Exception {
        try (PgServer pg =
                PgServer.startPrimary(
                        PgServer.Options.defaults()
                                .maxConnections(50)
                                .setting("application_name", "'testkit'"))) {
            assertEquals("50", pg.psql(PgServer.POSTGRES_DB, "show max_connections"));
            Connection victim =
                    pg.connect(PgServer.APP_DB, PgServer.APP_USER, PgServer.APP_PASSWORD);
            long pid = pg.postmasterPid();
            assertTrue(pid > 0);

            pg.kill();
            assertFalse(pg.isRunning());
            assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));
            assertThrows(SQLException.class, () -> currentUser(victim));
            assertThrows(
                    SQLException.class,
                    () ->
                            pg.connect(PgServer.APP_DB, PgServer.APP_USER, PgServer.APP_PASSWORD)
                                    .close());

            pg.start(); // crash recovery, same port
            assertEquals(
                    PgServer.APP_USER,
                    currentUser(
                            pg.connect(PgServer.APP_DB, PgServer.APP_USER, PgServer.APP_PASSWORD)));

            pg.stop();
            assertFalse(pg.isRunning());
            pg.start();
            assertEquals("1", pg.psql(PgServer.APP_DB, "select 1"));
        }
    }

    @Test
    void freePortsAreDistinct() {
        Set<Integer> seen = new HashSet<>();
        for (int port : FreePorts.next(50)) {
            assertTrue(port > 0 && port != 5432 && port != 5433);
            assertTrue(seen.add(port), "port handed out twice: " + port);
            assertTrue(FreePorts.isFree(port));
        }
    }

    @Test
    void procCapturesOutputAndTimesOut() {
        Proc.Result r = Proc.of("sh", "-c", "echo out; echo err >&2; exit 3").run();
        assertEquals(3, r.exitCode());
        assertEquals("out", r.stdoutTrimmed());
        assertEquals("err\n", r.stderr());
        Proc.ProcException failed =
                assertThrows(
                        Proc.ProcException.class,
                        () -> Proc.of("sh", "-c", "echo boom >&2; exit 1").check());
        assertTrue(failed.getMessage().contains("boom"));
        assertEquals("hello", Proc.of("cat").stdin("hello").check().stdout());
        long start = System.nanoTime();
        assertThrows(
                Proc.ProcException.class,
                () -> Proc.of("sleep", "30").timeout(Duration.ofMillis(300)).run());
        assertTrue(System.nanoTime() - start < Duration.ofSeconds(10).toNanos());
        String expectedUser =
                Proc.isRoot() ? Proc.postgresOsUser() : System.getProperty("user.name");
        assertEquals(expectedUser, Proc.of("id", "-un").asPostgresOwner().check().stdoutTrimmed());
        assertEquals(
                "x",
                Proc.of("sh", "-c", "printf %s \"$PGRELAY_T\"")
                        .asPostgresOwner()
                        .env("PGRELAY_T", "x")
                        .check()
                        .stdout());
    }

    private static String currentUser(Connection c) throws SQLException {
        try (c;
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select current_user")) {
            assertTrue(rs.next());
            return rs.getString(1);
        }
    }
}
