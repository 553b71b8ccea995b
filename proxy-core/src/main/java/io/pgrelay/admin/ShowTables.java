package io.pgrelay.admin;

import io.pgrelay.admin.AdminView.ConfigRow;
import io.pgrelay.admin.AdminView.ConnectionRow;
import io.pgrelay.admin.AdminView.DatabaseRow;
import io.pgrelay.admin.AdminView.PeerRow;
import io.pgrelay.admin.AdminView.PoolRow;
import io.pgrelay.admin.AdminView.PreparedStatementRow;
import io.pgrelay.admin.AdminView.StatCounters;
import io.pgrelay.admin.AdminView.StatsRow;
import io.pgrelay.admin.AdminView.TopologyRow;
import io.pgrelay.admin.AdminView.UserRow;
import io.pgrelay.admin.ResultWriter.Field;
import io.pgrelay.admin.ResultWriter.PgType;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * What each SHOW prints: its columns (names, types and order as PgBouncer 1.25's src/admin.c and
 * src/stats.c, then pgrelay's extras) and how a row of the view becomes their values.
 *
 * <p>Compatibility notes: monitoring tools match columns by name and need labels typed text, so
 * extras go at the end. Legacy names serve exporters written against PgBouncer < 1.8: STATS {@code
 * total_requests}/{@code avg_req}/{@code avg_query} (= query count, query rate, query time) and
 * DATABASES {@code reserve_pool} (= reserve_pool_size).
 */
final class ShowTables {

    static final String HELP = "help";

    /** PgBouncer SHOW subjects pgrelay has nothing behind (fd passing, slab allocator, totals). */
    static final Set<String> UNSUPPORTED =
            Set.of("fds", "sockets", "active_sockets", "mem", "totals");

    /**
     * Session settings the console pretends to have, as PgBouncer does (fake_param_list): drivers
     * and tools SHOW or SET them after connecting. SET on these is acknowledged with a "SET
     * ignored" notice, for every console user.
     */
    static final Map<String, String> SESSION_PARAMETERS =
            Map.of(
                    "client_encoding", "UTF8",
                    "default_transaction_isolation", "read committed",
                    "standard_conforming_strings", "on",
                    "datestyle", "ISO",
                    "timezone", "UTC",
                    "extra_float_digits", "2",
                    "application_name", "");

    static final String HELP_TEXT =
            String.join(
                    "\n\t",
                    "",
                    "SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION",
                    "SHOW LISTS|STATE|TOPOLOGY|PREPARED_STATEMENTS|PEERS|PEER_POOLS",
                    "SHOW DNS_HOSTS|DNS_ZONES",
                    "SHOW STATS|STATS_TOTALS|STATS_AVERAGES",
                    "SET key = arg",
                    "RELOAD",
                    "PAUSE [<db>]",
                    "RESUME [<db>]",
                    "DISABLE <db>",
                    "ENABLE <db>",
                    "RECONNECT [<db>]",
                    "KILL [<db>]",
                    "KILL_CLIENT <client_id>",
                    "SHUTDOWN",
                    "SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS",
                    "WAIT_CLOSE [<db>]");

    /** A SHOW result: columns plus a getter per column over the view's row type. */
    static final class Table<R> {

        private final Function<AdminView, List<R>> source;
        private final List<Field> fields = new ArrayList<>();
        private final List<Function<R, ?>> getters = new ArrayList<>();

        private Table(Function<AdminView, List<R>> source) {
            this.source = source;
        }

        List<Field> fields() {
            return fields;
        }

        List<Object[]> rows(AdminView view) {
            List<R> items = source.apply(view);
            List<Object[]> rows = new ArrayList<>(items.size());
            for (R item : items) {
                Object[] row = new Object[getters.size()];
                for (int i = 0; i < row.length; i++) {
                    row[i] = getters.get(i).apply(item);
                }
                rows.add(row);
            }
            return rows;
        }

        private Table<R> col(String name, PgType type, Function<R, ?> getter) {
            fields.add(new Field(name, type));
            getters.add(getter);
            return this;
        }

        private Table<R> text(String name, Function<R, ?> getter) {
            return col(name, PgType.TEXT, getter);
        }

        private Table<R> int4(String name, Function<R, ?> getter) {
            return col(name, PgType.INT4, getter);
        }

        private Table<R> int8(String name, Function<R, ?> getter) {
            return col(name, PgType.INT8, getter);
        }

        private Table<R> numeric(String name, Function<R, ?> getter) {
            return col(name, PgType.NUMERIC, getter);
        }
    }

    private record Pair(String key, Object value) {}

    private static final Map<String, Table<?>> TABLES = new HashMap<>();

    /** The table behind {@code SHOW subject} (lower case), or null if there is none. */
    static Table<?> table(String subject) {
        return TABLES.get(subject);
    }

    private static <R> Table<R> define(String subject, Function<AdminView, List<R>> source) {
        Table<R> t = new Table<>(source);
        TABLES.put(subject, t);
        return t;
    }

    private static final DateTimeFormatter TIMESTAMP =
            DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss z").withZone(ZoneId.of("UTC"));

    private static String timestamp(Instant t) {
        return t == null ? null : TIMESTAMP.format(t);
    }

    private static String yesNo(boolean b) {
        return b ? "yes" : "no";
    }

    private static int flag(boolean b) {
        return b ? 1 : 0;
    }

    private static int seconds(long micros) {
        return (int) (micros / 1_000_000);
    }

    private static int microsRemainder(long micros) {
        return (int) (micros % 1_000_000);
    }

    private static String text(Integer i) {
        return i == null ? null : i.toString();
    }

    /** The twelve counters in PgBouncer's column order. */
    private static final List<Function<StatCounters, Long>> COUNTERS =
            List.of(
                    StatCounters::serverAssignmentCount,
                    StatCounters::xactCount,
                    StatCounters::queryCount,
                    StatCounters::bytesReceived,
                    StatCounters::bytesSent,
                    StatCounters::xactTime,
                    StatCounters::queryTime,
                    StatCounters::waitTime,
                    StatCounters::clientParseCount,
                    StatCounters::serverParseCount,
                    StatCounters::bindCount,
                    StatCounters::clientLoginCount);

    private static void counters(
            Table<StatsRow> t, String names, Function<StatsRow, StatCounters> which) {
        String[] n = names.split(" ");
        for (int i = 0; i < n.length; i++) {
            Function<StatCounters, Long> counter = COUNTERS.get(i);
            t.numeric(n[i], r -> counter.apply(which.apply(r)));
        }
    }

    private static Table<ConnectionRow> connections(
            String subject, String type, Function<AdminView, List<ConnectionRow>> source) {
        return define(subject, source)
                .text("type", r -> type)
                .text("user", ConnectionRow::user)
                .text("database", ConnectionRow::database)
                .text("replication", ConnectionRow::replication)
                .text("state", ConnectionRow::state)
                .text("addr", ConnectionRow::addr)
                .int4("port", ConnectionRow::port)
                .text("local_addr", ConnectionRow::localAddr)
                .int4("local_port", ConnectionRow::localPort)
                .text("connect_time", r -> timestamp(r.connectTime()))
                .text("request_time", r -> timestamp(r.requestTime()))
                .int4("wait", r -> seconds(r.waitMicros()))
                .int4("wait_us", r -> microsRemainder(r.waitMicros()))
                .int4("close_needed", r -> flag(r.closeNeeded()))
                .text("ptr", ConnectionRow::ptr)
                .text("link", ConnectionRow::link)
                .int4("remote_pid", ConnectionRow::remotePid)
                .text("tls", ConnectionRow::tls)
                .text("application_name", ConnectionRow::applicationName)
                .int4("prepared_statements", ConnectionRow::preparedStatements)
                .int4("id", ConnectionRow::id)
                .text("pinned", ConnectionRow::pinned);
    }

    static {
        define("pools", AdminView::pools)
                .text("database", PoolRow::database)
                .text("user", PoolRow::user)
                .int4("cl_active", PoolRow::clActive)
                .int4("cl_waiting", PoolRow::clWaiting)
                .int4("cl_active_cancel_req", PoolRow::clActiveCancelReq)
                .int4("cl_waiting_cancel_req", PoolRow::clWaitingCancelReq)
                .int4("sv_active", PoolRow::svActive)
                .int4("sv_active_cancel", PoolRow::svActiveCancel)
                .int4("sv_being_canceled", PoolRow::svBeingCanceled)
                .int4("sv_idle", PoolRow::svIdle)
                .int4("sv_used", PoolRow::svUsed)
                .int4("sv_tested", PoolRow::svTested)
                .int4("sv_login", PoolRow::svLogin)
                .int4("maxwait", r -> seconds(r.maxWaitMicros()))
                .int4("maxwait_us", r -> microsRemainder(r.maxWaitMicros()))
                .text("pool_mode", PoolRow::poolMode)
                .text("load_balance_hosts", PoolRow::loadBalanceHosts)
                .text("role", PoolRow::role)
                .text("backend", PoolRow::backend)
                .int4("sv_pinned", PoolRow::svPinned);

        Table<StatsRow> stats =
                define("stats", AdminView::stats).text("database", StatsRow::database);
        counters(
                stats,
                "total_server_assignment_count total_xact_count total_query_count total_received"
                        + " total_sent total_xact_time total_query_time total_wait_time total_client_parse_count"
                        + " total_server_parse_count total_bind_count total_client_login_count",
                StatsRow::total);
        counters(
                stats,
                "avg_server_assignment_count avg_xact_count avg_query_count avg_recv avg_sent"
                        + " avg_xact_time avg_query_time avg_wait_time avg_client_parse_count"
                        + " avg_server_parse_count avg_bind_count avg_client_login_count",
                StatsRow::average);
        stats.numeric("total_requests", r -> r.total().queryCount())
                .numeric("avg_req", r -> r.average().queryCount())
                .numeric("avg_query", r -> r.average().queryTime());

        counters(
                define("stats_totals", AdminView::stats).text("database", StatsRow::database),
                "server_assignment_count xact_count query_count bytes_received bytes_sent xact_time"
                        + " query_time wait_time client_parse_count server_parse_count bind_count"
                        + " client_login_count",
                StatsRow::total);
        // The avg_ prefix on three columns is PgBouncer's, kept for tools that match names.
        counters(
                define("stats_averages", AdminView::stats).text("database", StatsRow::database),
                "server_assignment_count xact_count query_count bytes_received bytes_sent xact_time"
                        + " query_time wait_time avg_client_parse_count avg_server_parse_count"
                        + " avg_bind_count client_login_count",
                StatsRow::average);

        connections("clients", "C", AdminView::clients);
        connections("servers", "S", AdminView::servers);

        define("databases", AdminView::databases)
                .text("name", DatabaseRow::name)
                .text("host", DatabaseRow::host)
                .int4("port", DatabaseRow::port)
                .text("database", DatabaseRow::database)
                .text("force_user", DatabaseRow::forceUser)
                .int4("pool_size", DatabaseRow::poolSize)
                .int4("min_pool_size", DatabaseRow::minPoolSize)
                .int4("reserve_pool_size", DatabaseRow::reservePoolSize)
                .int4("server_lifetime", DatabaseRow::serverLifetime)
                .text("pool_mode", DatabaseRow::poolMode)
                .text("load_balance_hosts", DatabaseRow::loadBalanceHosts)
                .int4("max_connections", DatabaseRow::maxConnections)
                .int4("current_connections", DatabaseRow::currentConnections)
                .int4("max_client_connections", DatabaseRow::maxClientConnections)
                .int4("current_client_connections", DatabaseRow::currentClientConnections)
                .int4("paused", r -> flag(r.paused()))
                .int4("disabled", r -> flag(r.disabled()))
                .int4("reserve_pool", DatabaseRow::reservePoolSize);

        // pool_size and reserve_pool_size are text in PgBouncer: NULL when the user has no
        // override.
        define("users", AdminView::users)
                .text("name", UserRow::name)
                .text("pool_size", r -> text(r.poolSize()))
                .text("reserve_pool_size", r -> text(r.reservePoolSize()))
                .text("pool_mode", UserRow::poolMode)
                .int4("max_user_connections", UserRow::maxUserConnections)
                .int4("current_connections", UserRow::currentConnections)
                .int4("max_user_client_connections", UserRow::maxUserClientConnections)
                .int4("current_client_connections", UserRow::currentClientConnections);

        define(
                        "lists",
                        v -> {
                            AdminView.Lists l = v.lists();
                            return List.of(
                                    new Pair("databases", l.databases()),
                                    new Pair("users", l.users()),
                                    new Pair("peers", v.peers().size()),
                                    new Pair("pools", l.pools()),
                                    new Pair("peer_pools", 0),
                                    new Pair("free_clients", l.freeClients()),
                                    new Pair("used_clients", l.usedClients()),
                                    new Pair("login_clients", l.loginClients()),
                                    new Pair("free_servers", l.freeServers()),
                                    new Pair("used_servers", l.usedServers()),
                                    new Pair("dns_names", 0),
                                    new Pair("dns_zones", 0),
                                    new Pair("dns_queries", 0),
                                    new Pair("dns_pending", 0));
                        })
                .text("list", Pair::key)
                .int4("items", Pair::value);

        define("config", AdminView::config)
                .text("key", ConfigRow::key)
                .text("value", ConfigRow::value)
                .text("default", ConfigRow::defaultValue)
                .text("changeable", r -> yesNo(r.changeable()));

        define("version", v -> List.of(v.version())).text("version", s -> s);

        define(
                        "state",
                        v -> {
                            AdminView.State s = v.state();
                            return List.of(
                                    new Pair("active", yesNo(s == AdminView.State.ACTIVE)),
                                    new Pair("paused", yesNo(s == AdminView.State.PAUSED)),
                                    new Pair("suspended", yesNo(s == AdminView.State.SUSPENDED)));
                        })
                .text("key", Pair::key)
                .text("value", Pair::value);

        define("topology", AdminView::topology)
                .text("member", TopologyRow::member)
                .text("host", TopologyRow::host)
                .int4("port", TopologyRow::port)
                .text("role", TopologyRow::role)
                .text("state", TopologyRow::state)
                .int8("lag_bytes", TopologyRow::lagBytes)
                .text("read_eligible", r -> yesNo(r.readEligible()))
                .text("leader", r -> yesNo(r.leader()))
                .text("source", TopologyRow::source)
                .text("source_connected", r -> yesNo(r.sourceConnected()))
                .text("last_change", r -> timestamp(r.lastChange()));

        define("prepared_statements", AdminView::preparedStatements)
                .text("name", PreparedStatementRow::name)
                .text("query", PreparedStatementRow::query)
                .text("parameter_types", PreparedStatementRow::parameterTypes)
                .int4("client_refs", PreparedStatementRow::clientRefs)
                .int4("servers", PreparedStatementRow::servers);

        // PgBouncer's first three columns; no pool_size, as each forwarded cancel is a connection
        // of its own.
        define("peers", AdminView::peers)
                .int4("peer_id", PeerRow::peerId)
                .text("host", PeerRow::host)
                .int4("port", PeerRow::port)
                .text("instance_id", PeerRow::instanceId)
                .text("source", PeerRow::source)
                .text("self", r -> yesNo(r.self()))
                .int8("cancels_forwarded", PeerRow::cancelsForwarded);
        // No pools towards peers and no DNS cache of its own: PgBouncer's columns, no rows.
        define("peer_pools", v -> List.<Object>of())
                .int4("peer_id", r -> r)
                .int4("cl_active_cancel_req", r -> r)
                .int4("cl_waiting_cancel_req", r -> r)
                .int4("sv_active_cancel", r -> r)
                .int4("sv_login", r -> r);
        define("dns_hosts", v -> List.<Object>of())
                .text("hostname", r -> r)
                .int8("ttl", r -> r)
                .text("addrs", r -> r);
        define("dns_zones", v -> List.<Object>of())
                .text("zonename", r -> r)
                .int8("serial", r -> r)
                .int4("count", r -> r);

        SESSION_PARAMETERS.forEach(
                (name, value) -> define(name, v -> List.of(value)).text(name, s -> s));
    }

    private ShowTables() {}
}
