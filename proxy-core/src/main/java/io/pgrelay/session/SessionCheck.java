package io.pgrelay.session;

import io.netty.buffer.ByteBuf;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.session.SessionState.Pin;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * The one query that tells what a server session holds after a client's transaction: how many
 * temporary objects, listened channels, advisory locks, holdable cursors and SQL-prepared
 * statements it has (each a reason to pin), and every setting whose value came from this session
 * ({@code pg_settings.source = 'session'}: SET, set_config(..., false), and pgrelay's own replays).
 * Read at the end of a transaction, it is exact: a SET rolled back, a SET LOCAL, a savepoint
 * undone, a temp table dropped again all show as what they left, with nothing to simulate.
 *
 * <p>Values are read with current_setting(), whose text set_config() takes back unchanged (a list
 * such as search_path stays a list), so replaying them is exact too.
 */
public final class SessionCheck {

    /** Parts of a session a check reads (bits): its settings, and each reason to pin. */
    public static final int SETTINGS = 1;

    public static final int TEMP = 1 << 1;
    public static final int LISTEN = 1 << 2;
    public static final int LOCKS = 1 << 3;
    public static final int CURSORS = 1 << 4;
    public static final int PREPARED = 1 << 5;
    public static final int ALL = (1 << 6) - 1;

    /**
     * What each count of the first row reads, in order: the part it needs, and its query. The
     * temporary-object counts scan pg_class and pg_proc (no index on the namespace alone), so they
     * are skipped for a session that never had a temporary schema.
     */
    private static final String[] COUNT_QUERIES = {
        "CASE WHEN pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.=) 0 THEN 0 ELSE"
                + " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class"
                + " WHERE relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema())"
                + " OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc"
                + " WHERE pronamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()) END",
        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_listening_channels())",
        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks"
                + " WHERE pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()"
                + " AND locktype OPERATOR(pg_catalog.=) 'advisory')",
        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_cursors WHERE is_holdable)",
        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql)"
    };

    private static final int[] COUNT_PARTS = {TEMP, LISTEN, LOCKS, CURSORS, PREPARED};

    /**
     * The check of {@code parts} for a session logged in as {@code user}: one row with a null name
     * and the counts ("-" for a part not read), then, when settings are read, a (name, value) row
     * per session setting. SET ROLE and SET SESSION AUTHORIZATION do not show in pg_settings, so
     * with the settings the first row also says whether the session runs as anyone but its user.
     */
    public static String query(String user, SessionState.Check what) {
        int parts = what.parts();
        StringBuilder sql = new StringBuilder("SELECT NULL::text, pg_catalog.concat_ws(','");
        for (int i = 0; i < COUNT_QUERIES.length; i++) {
            sql.append(", ").append((parts & COUNT_PARTS[i]) != 0 ? COUNT_QUERIES[i] : "'-'");
        }
        if ((parts & SETTINGS) == 0) {
            return sql.append(", '-')").toString();
        }
        String literal = SessionParameters.literal(user);
        return sql.append(", (current_user OPERATOR(pg_catalog.<>) ")
                .append(literal)
                .append(" OR session_user OPERATOR(pg_catalog.<>) ")
                .append(literal)
                .append(")::pg_catalog.int4)")
                .append(" UNION ALL ")
                .append(settingsQuery(what.names()))
                .toString();
    }

    /**
     * Every setting this session changed, or (when {@code names} is not null) the current value of
     * just those: a tenth of the server's work.
     */
    private static String settingsQuery(java.util.Set<String> names) {
        if (names == null) {
            return "SELECT name, pg_catalog.current_setting(name) FROM pg_catalog.pg_settings"
                    + " WHERE source OPERATOR(pg_catalog.=) 'session'";
        }
        StringBuilder values = new StringBuilder();
        for (String name : names) {
            values.append(values.length() == 0 ? "" : ", ")
                    .append('(')
                    .append(SessionParameters.literal(name))
                    .append(')');
        }
        return "SELECT n, pg_catalog.current_setting(n) FROM (VALUES " + values + ") AS v(n)";
    }

    /** The counts' order in the first row, each its reason to pin. */
    private static final Pin[] COUNTED = {
        Pin.TEMP, Pin.LISTEN, Pin.ADVISORY_LOCK, Pin.HOLD_CURSOR, Pin.SQL_PREPARE, Pin.SETTING
    };

    /**
     * What the check found: the pins among those it read ({@code pinsRead}), and the session's
     * settings (null when it did not read them).
     */
    public record Result(
            int pins, int pinsRead, Map<String, String> settings, boolean allSettings) {}

    private final int parts;
    private final boolean allSettings;
    private final Map<String, String> settings = new HashMap<>();
    private int pins;
    private int pinsRead;
    private boolean counted;
    private boolean failed;

    /**
     * A check reading {@code parts}; of the settings every one the session changed ({@code
     * allSettings}) or only those it was asked about.
     */
    public SessionCheck(int parts, boolean allSettings) {
        this.parts = parts;
        this.allSettings = allSettings;
    }

    /** A DataRow of the answer (the caller keeps the frame). */
    public void row(ByteBuf frame) {
        int at = frame.readerIndex() + MessageFields.HEADER;
        if (frame.getUnsignedShort(at) != 2) {
            failed = true;
            return;
        }
        at += 2;
        int nameLength = frame.getInt(at);
        String name =
                nameLength < 0 ? null : frame.toString(at + 4, nameLength, StandardCharsets.UTF_8);
        at += 4 + Math.max(0, nameLength);
        int valueLength = frame.getInt(at);
        String value =
                valueLength < 0
                        ? null
                        : frame.toString(at + 4, valueLength, StandardCharsets.UTF_8);
        if (name == null) {
            counts(value);
        } else if (value != null) {
            String canonical = SessionParameters.canonicalName(name);
            settings.put(canonical, value);
            if (SessionParameters.NOT_SYNCED.contains(canonical)) {
                pins |= Pin.SETTING.bit();
            }
        }
    }

    private void counts(String counts) {
        String[] values = counts == null ? new String[0] : counts.split(",");
        if (values.length != COUNTED.length) {
            failed = true;
            return;
        }
        counted = true;
        for (int i = 0; i < values.length; i++) {
            if (values[i].equals("-")) {
                continue; // not read
            }
            if (COUNTED[i] == Pin.SETTING && !allSettings) {
                // Another role pins; but only a read of every setting can say none pins.
                pins |= values[i].equals("0") ? 0 : Pin.SETTING.bit();
                continue;
            }
            pinsRead |= COUNTED[i].bit();
            if (!values[i].equals("0")) {
                pins |= COUNTED[i].bit();
            }
        }
    }

    /** The server answered with an error: nothing it said can be trusted. */
    public void failed() {
        failed = true;
    }

    /** The answer, or null if it failed or was incomplete. */
    public Result result() {
        if (failed || !counted) {
            return null;
        }
        return new Result(
                pins, pinsRead, (parts & SETTINGS) != 0 ? Map.copyOf(settings) : null, allSettings);
    }
}
