package io.pgrelay.admin;

import static io.pgrelay.admin.ConsoleHarness.bind;
import static io.pgrelay.admin.ConsoleHarness.close;
import static io.pgrelay.admin.ConsoleHarness.describe;
import static io.pgrelay.admin.ConsoleHarness.execute;
import static io.pgrelay.admin.ConsoleHarness.flush;
import static io.pgrelay.admin.ConsoleHarness.parse;
import static io.pgrelay.admin.ConsoleHarness.query;
import static io.pgrelay.admin.ConsoleHarness.row;
import static io.pgrelay.admin.ConsoleHarness.sync;
import static io.pgrelay.admin.ConsoleHarness.terminate;
import static io.pgrelay.admin.ConsoleHarness.types;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.pgrelay.admin.ConsoleHarness.Column;
import io.pgrelay.admin.ConsoleHarness.Msg;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class AdminSessionTest {

    private static final int TEXT = 25;
    private static final int INT4 = 23;
    private static final int INT8 = 20;
    private static final int NUMERIC = 1700;

    private ConsoleHarness admin = new ConsoleHarness(true);

    @AfterEach
    void everythingReleased() {
        admin.replies(); // releases what a test left undecoded
        admin.session.close();
        admin.assertInputsReleased();
    }

    private List<Msg> simple(String sql) {
        admin.send(query(sql));
        return admin.replies();
    }

    @Test
    void showPoolsDescribesTypedColumnsWithExtrasLast() {
        List<Msg> r = simple("SHOW POOLS");
        assertEquals("TDCZ", types(r));
        List<Column> cols = r.get(0).columns();
        assertEquals(
                List.of(
                        "database",
                        "user",
                        "cl_active",
                        "cl_waiting",
                        "cl_active_cancel_req",
                        "cl_waiting_cancel_req",
                        "sv_active",
                        "sv_active_cancel",
                        "sv_being_canceled",
                        "sv_idle",
                        "sv_used",
                        "sv_tested",
                        "sv_login",
                        "maxwait",
                        "maxwait_us",
                        "pool_mode",
                        "load_balance_hosts",
                        "role",
                        "backend",
                        "sv_pinned"),
                r.get(0).columnNames());
        assertEquals(new Column("database", TEXT, 0), cols.get(0));
        assertEquals(new Column("cl_active", INT4, 0), cols.get(2));
        assertEquals(new Column("pool_mode", TEXT, 0), cols.get(15));
        Map<String, String> pool = row(r.get(0), r.get(1));
        assertEquals("app", pool.get("database"));
        assertEquals("3", pool.get("cl_active"));
        assertEquals("2", pool.get("maxwait"));
        assertEquals("500000", pool.get("maxwait_us"));
        assertNull(pool.get("load_balance_hosts"));
        assertEquals("primary", pool.get("role"));
        assertEquals("10.0.0.1:5432", pool.get("backend"));
        assertEquals("SHOW", r.get(2).tag());
        assertEquals('I', r.get(3).status());
    }

    @Test
    void showStatsIsNumericWithLegacyColumns() {
        List<Msg> r = simple("SHOW STATS");
        assertEquals("TDDCZ", types(r));
        List<Column> cols = r.get(0).columns();
        assertEquals(new Column("database", TEXT, 0), cols.get(0));
        assertEquals("total_server_assignment_count", cols.get(1).name());
        assertEquals("total_client_login_count", cols.get(12).name());
        assertEquals("avg_server_assignment_count", cols.get(13).name());
        assertEquals("avg_client_login_count", cols.get(24).name());
        assertTrue(cols.stream().skip(1).allMatch(c -> c.oid() == NUMERIC), cols.toString());
        Map<String, String> app = row(r.get(0), r.get(1));
        assertEquals("30", app.get("total_query_count"));
        assertEquals("4000", app.get("total_received"));
        assertEquals("500", app.get("avg_sent"));
        assertEquals("70", app.get("avg_query_time"));
        assertEquals(app.get("total_query_count"), app.get("total_requests"));
        assertEquals(app.get("avg_query_count"), app.get("avg_req"));
        assertEquals(app.get("avg_query_time"), app.get("avg_query"));
        assertEquals("pgbouncer", row(r.get(0), r.get(2)).get("database"));
    }

    @Test
    void statsTotalsAndAveragesUsePgBouncerNames() {
        List<Msg> totals = simple("SHOW STATS_TOTALS");
        assertEquals(
                List.of(
                        "database",
                        "server_assignment_count",
                        "xact_count",
                        "query_count",
                        "bytes_received",
                        "bytes_sent",
                        "xact_time",
                        "query_time",
                        "wait_time",
                        "client_parse_count",
                        "server_parse_count",
                        "bind_count",
                        "client_login_count"),
                totals.get(0).columnNames());
        assertEquals("4000", row(totals.get(0), totals.get(1)).get("bytes_received"));
        List<Msg> averages = simple("show stats_averages");
        assertEquals("avg_bind_count", averages.get(0).columnNames().get(11));
        assertEquals("400", row(averages.get(0), averages.get(1)).get("bytes_received"));
    }

    @Test
    void showClientsFormatsTimesAndSplitsWait() {
        List<Msg> r = simple("SHOW CLIENTS;");
        assertEquals("TDCZ", types(r));
        assertEquals(22, r.get(0).columns().size());
        Map<String, String> c = row(r.get(0), r.get(1));
        assertEquals("C", c.get("type"));
        assertEquals("2025-01-02 03:04:05 UTC", c.get("connect_time"));
        assertNull(c.get("request_time"));
        assertEquals("1", c.get("wait"));
        assertEquals("1", c.get("wait_us"));
        assertEquals("0", c.get("close_needed"));
        assertEquals("7", c.get("id"));
        assertEquals("TCZ", types(simple("SHOW SERVERS")));
    }

    @Test
    void showConfigVersionListsDatabasesUsersStateTopology() {
        List<Msg> config = simple("SHOW CONFIG");
        assertEquals(List.of("key", "value", "default", "changeable"), config.get(0).columnNames());
        assertEquals(List.of("max_client_conn", "100", "100", "yes"), config.get(1).values());
        assertEquals(List.of("listen_port", "6432", "6432", "no"), config.get(2).values());

        List<Msg> version = simple("SHOW VERSION;");
        assertEquals(List.of(new Column("version", TEXT, 0)), version.get(0).columns());
        assertEquals(List.of("PgBouncer 1.25.0 (pgrelay 0.1.0)"), version.get(1).values());

        List<Msg> lists = simple("SHOW LISTS");
        assertEquals(
                List.of(new Column("list", TEXT, 0), new Column("items", INT4, 0)),
                lists.get(0).columns());
        assertEquals(List.of("databases", "2"), lists.get(1).values());
        assertEquals(List.of("used_servers", "6"), lists.get(10).values());
        assertEquals(14 + 3, lists.size());

        List<Msg> dbs = simple("SHOW DATABASES");
        Map<String, String> db = row(dbs.get(0), dbs.get(1));
        assertEquals("5", db.get("reserve_pool_size"));
        assertEquals("5", db.get("reserve_pool"));
        assertEquals("1", db.get("paused"));
        assertNull(db.get("force_user"));
        assertEquals("reserve_pool", dbs.get(0).columnNames().get(17));

        List<Msg> users = simple("SHOW USERS");
        assertEquals(TEXT, users.get(0).columns().get(1).oid());
        assertEquals(
                Arrays.asList("alice", "10", null, null, "0", "2", "0", "3"),
                users.get(1).values());

        admin.view.state = AdminView.State.PAUSED;
        List<Msg> state = simple("SHOW STATE");
        assertEquals(List.of("active", "no"), state.get(1).values());
        assertEquals(List.of("paused", "yes"), state.get(2).values());

        List<Msg> topology = simple("SHOW TOPOLOGY");
        assertEquals(INT8, topology.get(0).columns().get(5).oid());
        Map<String, String> member = row(topology.get(0), topology.get(1));
        assertNull(member.get("lag_bytes"));
        assertEquals("yes", member.get("leader"));
        assertEquals("no", member.get("read_eligible"));

        assertEquals("TCZ", types(simple("SHOW PREPARED_STATEMENTS")));
        List<Msg> peers = simple("SHOW PEERS");
        assertEquals("TDDCZ", types(peers));
        Map<String, String> other = row(peers.get(0), peers.get(2));
        assertEquals("2", other.get("peer_id"));
        assertEquals("pgrelay-b", other.get("instance_id"));
        assertEquals("no", other.get("self"));
        assertEquals("3", other.get("cancels_forwarded"));
        assertEquals("TCZ", types(simple("SHOW PEER_POOLS")));
    }

    @Test
    void commandsAreCaseInsensitiveAndAcceptTrailingSemicolons() {
        for (String sql :
                List.of("show pools", "Show Pools ;", "  sHoW\tpOoLs;  ", "SHOW POOLS;;")) {
            List<Msg> r = simple(sql);
            assertEquals("TDCZ", types(r), sql);
        }
    }

    @Test
    void severalStatementsInOneQueryShareOneReadyForQuery() {
        List<Msg> r = simple("SHOW VERSION; SHOW STATE; RELOAD");
        assertEquals("TDCTDDDCCZ", types(r));
        assertEquals("version", r.get(0).columnNames().get(0));
        assertEquals("key", r.get(3).columnNames().get(0));
        assertEquals("RELOAD", r.get(8).tag());
        assertEquals(List.of("RELOAD"), admin.control.calls);
    }

    @Test
    void emptyQueryGetsEmptyQueryResponse() {
        assertEquals("IZ", types(simple("")));
        assertEquals("IZ", types(simple("  ;  ; ")));
    }

    @Test
    void unknownCommandIsASyntaxErrorThatEndsTheQuery() {
        List<Msg> r = simple("SHOW VERSION; BOGUS STUFF; SHOW STATE");
        assertEquals("TDCEZ", types(r));
        assertEquals("42601", r.get(3).sqlState());
        assertEquals("invalid command 'BOGUS STUFF', use SHOW HELP;", r.get(3).fields().get('M'));
        assertEquals("ERROR", r.get(3).fields().get('S'));
        assertEquals("42601", simple("SHOW NOTHING").get(0).sqlState());
        assertEquals("42601", simple("SHOW").get(0).sqlState());
        assertEquals("42601", simple("PAUSE a b").get(0).sqlState());
        assertEquals("0A000", simple("SHOW FDS").get(0).sqlState());
        assertEquals("0A000", simple("SUSPEND").get(0).sqlState());
        // The session goes on after errors.
        assertEquals("TDCZ", types(simple("SHOW VERSION")));
    }

    @Test
    void statsUserMayShowButNotControl() {
        ConsoleHarness stats = new ConsoleHarness(false);
        try {
            for (String sql :
                    List.of(
                            "PAUSE",
                            "RESUME app",
                            "KILL_CLIENT 3",
                            "SET default_pool_size = 5",
                            "SHUTDOWN",
                            "RELOAD")) {
                stats.send(query(sql));
                List<Msg> r = stats.replies();
                assertEquals("EZ", types(r), sql);
                assertEquals("42501", r.get(0).sqlState());
                assertEquals("admin access needed", r.get(0).fields().get('M'));
            }
            assertEquals(List.of(), stats.control.calls);
            stats.send(query("SHOW POOLS"));
            assertEquals("TDCZ", types(stats.replies()));
            // Setting a session parameter is harmless and allowed, as in PgBouncer.
            stats.send(query("SET extra_float_digits = 3"));
            assertEquals("NCZ", types(stats.replies()));
        } finally {
            stats.session.close();
            stats.assertInputsReleased();
        }
    }

    @Test
    void controlCommandsReachControlWithTheirArguments() {
        List<Msg> r =
                simple(
                        "PAUSE; PAUSE app; RESUME \"my-db\"; RECONNECT; KILL app; KILL_CLIENT 42;"
                                + " DISABLE app; ENABLE app; WAIT_CLOSE; SHUTDOWN wait_for_clients");
        assertEquals("CCCCCCCCCCZ", types(r));
        assertEquals(
                List.of(
                        "PAUSE",
                        "PAUSE",
                        "RESUME",
                        "RECONNECT",
                        "KILL",
                        "KILL_CLIENT",
                        "DISABLE",
                        "ENABLE",
                        "WAIT_CLOSE",
                        "SHUTDOWN"),
                r.stream().filter(m -> m.type() == 'C').map(Msg::tag).toList());
        assertEquals(
                List.of(
                        "PAUSE null",
                        "PAUSE app",
                        "RESUME my-db",
                        "RECONNECT null",
                        "KILL app",
                        "KILL_CLIENT 42",
                        "DISABLE app",
                        "ENABLE app",
                        "WAIT_CLOSE null",
                        "SHUTDOWN WAIT_FOR_CLIENTS"),
                admin.control.calls);
        assertEquals("42601", simple("DISABLE").get(0).sqlState());
        assertEquals("42601", simple("KILL_CLIENT abc").get(0).sqlState());
        assertEquals("42601", simple("SHUTDOWN NOW").get(0).sqlState());
    }

    @Test
    void controlFailureIsReportedAndStopsTheQuery() {
        admin.control.answers.put("RESUME", AdminControl.failed("pooler is not paused/suspended"));
        List<Msg> r = simple("RESUME; SHOW VERSION");
        assertEquals("EZ", types(r));
        assertEquals("55000", r.get(0).sqlState());
        assertEquals("pooler is not paused/suspended", r.get(0).fields().get('M'));
        admin.control.answers.put(
                "RELOAD", CompletableFuture.failedFuture(new IllegalStateException("boom")));
        assertEquals("XX000", simple("RELOAD").get(0).sqlState());
    }

    @Test
    void setRoutesKeyAndUnquotedValueToControl() {
        assertEquals("CZ", types(simple("SET default_pool_size = 50")));
        assertEquals("SET", simple("set log_connections to 0").get(0).tag());
        simple("SET server_reset_query = 'DISCARD ALL; -- it''s fine'");
        simple("SET \"Key\" TO \"v\"");
        simple("SET a=b");
        assertEquals(
                List.of(
                        "SET default_pool_size=50",
                        "SET log_connections=0",
                        "SET server_reset_query=DISCARD ALL; -- it's fine",
                        "SET Key=v",
                        "SET a=b"),
                admin.control.calls);

        admin.control.answers.put("SET", AdminControl.failed("unknown setting: nope"));
        List<Msg> r = simple("SET nope = 1");
        assertEquals("22023", r.get(0).sqlState());

        List<Msg> ignored = simple("SET client_encoding TO 'UTF8'");
        assertEquals("NCZ", types(ignored));
        assertEquals("SET ignored", ignored.get(0).fields().get('M'));
        assertEquals("42601", simple("SET x").get(0).sqlState());
        assertEquals("42601", simple("SET x = 'unterminated").get(0).sqlState());
    }

    @Test
    void showHelpIsANoticeLikePgBouncer() {
        List<Msg> r = simple("SHOW HELP");
        assertEquals("NCZ", types(r));
        Map<Character, String> notice = r.get(0).fields();
        assertEquals("NOTICE", notice.get('S'));
        assertEquals("Console usage", notice.get('M'));
        assertTrue(notice.get('D').contains("\tSHOW HELP|CONFIG|DATABASES"), notice.get('D'));
        assertEquals("SHOW", r.get(1).tag());
    }

    @Test
    void sessionParametersCanBeShown() {
        List<Msg> r = simple("SHOW client_encoding");
        assertEquals(List.of("client_encoding"), r.get(0).columnNames());
        assertEquals(List.of("UTF8"), r.get(1).values());
    }

    // ---- extended protocol ----

    @Test
    void unnamedStatementAsPgJdbcSendsIt() {
        admin.send(
                parse("", "SHOW POOLS"), bind("", ""), describe('P', ""), execute("", 0), sync());
        List<Msg> r = admin.replies();
        assertEquals("12TDCZ", types(r));
        assertEquals("database", r.get(2).columnNames().get(0));
        assertEquals("app", r.get(3).values().get(0));
        assertEquals("SHOW", r.get(4).tag());
    }

    @Test
    void namedStatementIsDescribedAndReusedAcrossSyncs() {
        admin.send(parse("S_1", "SHOW VERSION"), describe('S', "S_1"), sync());
        List<Msg> r = admin.replies();
        assertEquals("1tTZ", types(r));
        assertArrayEquals(new byte[] {0, 0}, r.get(1).body()); // no parameters
        assertEquals(List.of(new Column("version", TEXT, 0)), r.get(2).columns());

        for (int i = 0; i < 2; i++) {
            admin.send(bind("P_1", "S_1"), execute("P_1", 0), sync());
            r = admin.replies();
            assertEquals("2DCZ", types(r));
            assertEquals("PgBouncer 1.25.0 (pgrelay 0.1.0)", r.get(1).values().get(0));
        }
        admin.send(close('S', "S_1"), sync(), bind("", "S_1"), sync());
        r = admin.replies();
        assertEquals("3ZEZ", types(r));
        assertEquals("26000", r.get(2).sqlState());
    }

    @Test
    void describeOfControlAndHelpIsNoData() {
        admin.send(
                parse("", "RELOAD"),
                describe('S', ""),
                bind("", ""),
                describe('P', ""),
                execute("", 0),
                sync());
        assertEquals("1tn2nCZ", types(admin.replies()));
        admin.send(
                parse("h", "SHOW HELP"), bind("", "h"), describe('P', ""), execute("", 0), sync());
        assertEquals("12nNCZ", types(admin.replies()));
        admin.send(parse("", ""), bind("", ""), describe('P', ""), execute("", 0), sync());
        assertEquals("12nIZ", types(admin.replies()));
    }

    @Test
    void errorInExtendedModeSkipsUntilSync() {
        admin.send(
                parse("", "BOGUS"),
                bind("", ""),
                describe('P', ""),
                execute("", 0),
                flush(),
                query("SHOW VERSION"),
                sync());
        List<Msg> r = admin.replies();
        assertEquals("EZ", types(r));
        assertEquals("42601", r.get(0).sqlState());
        admin.send(parse("", "SHOW STATE"), bind("", ""), execute("", 0), sync());
        assertEquals("12DDDCZ", types(admin.replies()));

        // Errors found at Execute (permission) and at Bind (unknown statement) skip too.
        ConsoleHarness stats = new ConsoleHarness(false);
        try {
            stats.send(parse("", "PAUSE"), bind("", ""), execute("", 0), execute("", 0), sync());
            r = stats.replies();
            assertEquals("12EZ", types(r));
            assertEquals("42501", r.get(2).sqlState());
            stats.send(bind("", "nope"), execute("", 0), sync());
            assertEquals("EZ", types(stats.replies()));
        } finally {
            stats.session.close();
            stats.assertInputsReleased();
        }
        assertEquals(List.of(), admin.control.calls);
    }

    @Test
    void duplicateNamedStatementAndMultipleCommandsAreRejected() {
        admin.send(parse("s", "SHOW STATE"), parse("s", "SHOW POOLS"), sync());
        List<Msg> r = admin.replies();
        assertEquals("1EZ", types(r));
        assertEquals("42P05", r.get(1).sqlState());
        admin.send(parse("", "SHOW STATE; SHOW POOLS"), sync());
        assertEquals("42601", admin.replies().get(0).sqlState());
        // The unnamed statement may be replaced freely.
        admin.send(parse("", "SHOW STATE"), parse("", "SHOW POOLS"), sync());
        assertEquals("11Z", types(admin.replies()));
    }

    @Test
    void executeWithRowLimitSuspendsThePortal() {
        admin.send(
                parse("", "SHOW STATE"),
                bind("c", ""),
                execute("c", 2),
                execute("c", 2),
                execute("c", 2),
                sync());
        List<Msg> r = admin.replies();
        assertEquals("12DDsDCCZ", types(r));
        assertEquals(List.of("suspended", "no"), r.get(5).values());
        assertEquals(1, admin.view.showCalls); // one snapshot for the whole portal
    }

    @Test
    void binaryResultFormatsAreHonoured() {
        admin.send(
                parse("", "SHOW STATS"),
                bind("", "", 1),
                describe('P', ""),
                execute("", 0),
                sync());
        List<Msg> r = admin.replies();
        assertEquals("12TDDCZ", types(r));
        List<Column> cols = r.get(2).columns();
        assertTrue(cols.stream().allMatch(c -> c.format() == 1));
        List<byte[]> values = r.get(3).rawValues();
        assertEquals("app", new String(values.get(0)));
        // total_query_count = 30: ndigits 1, weight 0, sign +, dscale 0, digit 30
        assertArrayEquals(new byte[] {0, 1, 0, 0, 0, 0, 0, 0, 0, 30}, values.get(3));
        // avg_client_login_count = 1234 5678 0000: the trailing zero digit is dropped, weight stays
        // 2
        assertArrayEquals(
                new byte[] {0, 2, 0, 2, 0, 0, 0, 0, 0x04, (byte) 0xd2, 0x16, 0x2e}, values.get(24));

        admin.send(
                parse("", "SHOW POOLS"),
                bind("", "", 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
                execute("", 0),
                sync());
        r = admin.replies();
        assertEquals("12DCZ", types(r));
        assertEquals(3, ByteBuffer.wrap(r.get(2).rawValues().get(2)).getInt());
        assertEquals("alice", new String(r.get(2).rawValues().get(1)));

        admin.send(parse("", "SHOW POOLS"), bind("", "", 0, 1), sync());
        assertEquals("08P01", admin.replies().get(1).sqlState());
        admin.send(parse("", "SHOW POOLS"), bind("", "", 2), sync());
        assertEquals("22023", admin.replies().get(1).sqlState());
    }

    // ---- asynchronous control ----

    @Test
    void pauseHoldsLaterOutputUntilItCompletes() {
        CompletableFuture<String> paused = new CompletableFuture<>();
        admin.control.answers.put("PAUSE", paused);
        admin.send(query("PAUSE app; SHOW STATE"));
        assertEquals("", types(admin.replies()));
        assertTrue(admin.session.isWaiting());
        admin.send(query("SHOW VERSION"), parse("", "SHOW LISTS"), sync());
        assertEquals("", types(admin.replies()));
        admin.runScheduled();
        assertEquals("", types(admin.replies()));

        paused.complete(null); // e.g. the last server of app was released, or RESUME overtook it
        assertEquals("", types(admin.replies())); // the continuation runs on the event loop only
        admin.runScheduled();
        List<Msg> r = admin.replies();
        assertEquals("CTDDDCZ" + "TDCZ" + "1Z", types(r));
        assertEquals("PAUSE", r.get(0).tag());
        assertFalse(admin.session.isWaiting());
        assertEquals(List.of("PAUSE app"), admin.control.calls);
        admin.assertInputsReleased();
    }

    @Test
    void pauseFailingLaterEndsTheQueryWithAnError() {
        CompletableFuture<String> paused = new CompletableFuture<>();
        admin.control.answers.put("PAUSE", paused);
        admin.send(query("PAUSE; SHOW STATE"), query("SHOW VERSION"));
        paused.complete("pause overtaken by shutdown");
        admin.runScheduled();
        List<Msg> r = admin.replies();
        assertEquals("EZTDCZ", types(r));
        assertEquals("55000", r.get(0).sqlState());
    }

    @Test
    void waitCloseInExtendedModeCompletesTheExecute() {
        CompletableFuture<String> closedAll = new CompletableFuture<>();
        admin.control.answers.put("WAIT_CLOSE", closedAll);
        admin.send(parse("", "WAIT_CLOSE app"), bind("", ""), execute("", 0), sync());
        assertEquals("12", types(admin.replies()));
        admin.send(parse("", "SHOW VERSION"), bind("", ""), execute("", 0), sync());
        assertEquals("", types(admin.replies()));
        closedAll.complete(null);
        admin.runScheduled();
        assertEquals("CZ12DCZ", types(admin.replies()));
    }

    @Test
    void extendedControlFailureLaterSkipsUntilSync() {
        CompletableFuture<String> paused = new CompletableFuture<>();
        admin.control.answers.put("PAUSE", paused);
        admin.send(
                parse("", "PAUSE"), bind("", ""), execute("", 0), parse("", "SHOW STATE"), sync());
        assertEquals("12", types(admin.replies()));
        paused.complete("already suspended/paused");
        admin.runScheduled();
        assertEquals("EZ", types(admin.replies()));
    }

    @Test
    void disconnectWhileWaitingReleasesHeldFramesAndIgnoresCompletion() {
        CompletableFuture<String> paused = new CompletableFuture<>();
        admin.control.answers.put("PAUSE", paused);
        admin.send(query("PAUSE"), query("SHOW POOLS"), parse("", "SHOW STATE"));
        admin.session.close();
        admin.assertInputsReleased();
        paused.complete(null);
        admin.runScheduled();
        assertEquals("", types(admin.replies()));
        admin.send(query("SHOW POOLS"));
        assertEquals("", types(admin.replies()));
    }

    @Test
    void terminateWhileWaitingClosesAtOnce() {
        CompletableFuture<String> paused = new CompletableFuture<>();
        admin.control.answers.put("PAUSE", paused);
        admin.send(query("PAUSE"), query("SHOW POOLS"), terminate());
        assertTrue(admin.session.wantsClose());
        assertTrue(admin.outputClosed);
        admin.assertInputsReleased();
        paused.complete(null);
        admin.runScheduled();
        assertEquals("", types(admin.replies()));
    }

    // ---- session end and bad input ----

    @Test
    void terminateClosesTheSession() {
        assertFalse(admin.session.wantsClose());
        admin.send(terminate());
        assertTrue(admin.session.wantsClose());
        assertTrue(admin.outputClosed);
        assertEquals("", types(admin.replies()));
    }

    @Test
    void malformedOrUnknownMessagesAreFatal() {
        ByteBuf unterminated =
                ConsoleHarness.frame('Q', Unpooled.buffer().writeBytes("SHOW POOLS".getBytes()));
        admin.send(unterminated);
        List<Msg> r = admin.replies();
        assertEquals("E", types(r));
        assertEquals("FATAL", r.get(0).fields().get('S'));
        assertEquals("08P01", r.get(0).sqlState());
        assertTrue(admin.session.wantsClose());

        ConsoleHarness other = new ConsoleHarness(true);
        try {
            other.send(ConsoleHarness.frame('F', Unpooled.buffer().writeInt(0)));
            r = other.replies();
            assertEquals("08P01", r.get(0).sqlState());
            assertTrue(r.get(0).fields().get('M').contains("'F'"), r.get(0).fields().toString());
            assertTrue(other.outputClosed);
        } finally {
            other.session.close();
            other.assertInputsReleased();
        }
    }

    @Test
    void bindCountsAreUnsigned() {
        // 0xffff parameter formats, as FFFF and not -1 (found by AdminConsoleFuzzTest): too short a
        // message.
        admin.send(ConsoleHarness.frame('B', Unpooled.buffer().writeShort(0).writeShort(0xffff)));
        List<Msg> r = admin.replies();
        assertEquals("E", types(r));
        assertEquals("08P01", r.get(0).sqlState());
        assertTrue(admin.session.wantsClose());
    }
}
