package io.pgrelay.session;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Keeps server connections' session parameters in line with what each client asked for.
 *
 * <p>pgrelay logs in to PostgreSQL with only user and database. A client's startup parameters
 * (client_encoding, DateStyle, TimeZone, application_name, extra_float_digits, search_path...) are
 * applied with set_config() when the client is given a server connection whose values differ, as
 * PgBouncer does. Both sides are tracked as name → value maps with canonical names: server values
 * come from its ParameterStatus reports and from the SETs pgrelay sent; client values start as the
 * pool's welcome values overlaid with the startup packet, and follow ParameterStatus reports caused
 * by the client's own SET commands.
 *
 * <p>Parameters the server does not report (search_path, statement_timeout...) are learnt from the
 * session check after a transaction that may have changed them ({@link SessionCheck}).
 */
public final class SessionParameters {

    /** Reported by the server but not settable, or not a client's business: never synced. */
    static final Set<String> NOT_SYNCED =
            Set.of(
                    "server_version",
                    "server_encoding",
                    "integer_datetimes",
                    "is_superuser",
                    "session_authorization",
                    "in_hot_standby",
                    "scram_iterations",
                    "server_version_num");

    /** Startup packet keys that are not session parameters at all. */
    static final Set<String> STARTUP_ONLY = Set.of("user", "database", "replication", "options");

    private static final Pattern NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_.]*");

    private static final Map<String, String> CANONICAL =
            Map.of(
                    "datestyle", "DateStyle",
                    "timezone", "TimeZone",
                    "intervalstyle", "IntervalStyle");

    /**
     * Interned copies of clients' parameter maps: clients asking for the same settings share one
     * instance, so "is this server connection already set up like this client?" is an identity
     * check per lease instead of a map comparison. Bounded, because an application that gives every
     * connection its own application_name makes every map distinct.
     */
    private static final com.github.benmanes.caffeine.cache.Cache<
                    Map<String, String>, Map<String, String>>
            INTERNED =
                    com.github.benmanes.caffeine.cache.Caffeine.newBuilder()
                            .maximumSize(10_000)
                            .build();

    private SessionParameters() {}

    /** The shared immutable copy of {@code values}. */
    public static Map<String, String> intern(Map<String, String> values) {
        Map<String, String> copy = Map.copyOf(values);
        return INTERNED.get(copy, k -> k);
    }

    /** GUC names are case-insensitive; the server reports these in mixed case. */
    public static String canonicalName(String name) {
        String lower = name.toLowerCase(Locale.ROOT);
        return CANONICAL.getOrDefault(lower, lower);
    }

    public static boolean isValidName(String name) {
        return NAME.matcher(name).matches();
    }

    /**
     * The SQL that makes a server connection's parameters equal the client's, or null when they
     * already are. Updates {@code server} to the values it will have afterwards.
     *
     * <p>Values go through set_config(), which reads them as the startup packet and
     * current_setting() spell them: {@code search_path = 'a, b'} is two schemas there, where {@code
     * SET search_path TO 'a, b'} would be one schema named "a, b".
     */
    public static String synchronize(Map<String, String> client, Map<String, String> server) {
        StringBuilder sets = null;
        for (Map.Entry<String, String> e : client.entrySet()) {
            String name = e.getKey();
            if (NOT_SYNCED.contains(name) || e.getValue().equals(server.get(name))) {
                continue;
            }
            sets = sets == null ? new StringBuilder("SELECT ") : sets.append(", ");
            sets.append("pg_catalog.set_config(")
                    .append(literal(name))
                    .append(", ")
                    .append(literal(e.getValue()))
                    .append(", false)");
            server.put(name, e.getValue());
        }
        StringBuilder sql = sets;
        // Parameters an earlier client had set that this client did not ask for go back to default.
        var it = server.entrySet().iterator();
        while (it.hasNext()) {
            String name = it.next().getKey();
            if (!client.containsKey(name) && !NOT_SYNCED.contains(name)) {
                sql = append(sql, "RESET " + name);
                it.remove();
            }
        }
        return sql == null ? null : sql.toString();
    }

    private static StringBuilder append(StringBuilder sql, String statement) {
        if (sql == null) {
            return new StringBuilder(statement);
        }
        return sql.append(';').append(statement);
    }

    /** A string literal safe whatever standard_conforming_strings says. */
    public static String literal(String value) {
        String quoted = value.replace("'", "''");
        if (quoted.indexOf('\\') >= 0) {
            return "E'" + quoted.replace("\\", "\\\\") + "'";
        }
        return "'" + quoted + "'";
    }

    /**
     * Splits a libpq {@code options} value ({@code -c name=value --name=value}) into parameters.
     * Backslash escapes a space, as in PostgreSQL's pg_split_opts.
     */
    public static void parseOptions(String options, Map<String, String> into) {
        List<String> words = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        boolean escaped = false;
        for (int i = 0; i < options.length(); i++) {
            char ch = options.charAt(i);
            if (escaped) {
                word.append(ch);
                escaped = false;
            } else if (ch == '\\') {
                escaped = true;
            } else if (Character.isWhitespace(ch)) {
                if (word.length() > 0) {
                    words.add(word.toString());
                    word.setLength(0);
                }
            } else {
                word.append(ch);
            }
        }
        if (word.length() > 0) {
            words.add(word.toString());
        }
        for (int i = 0; i < words.size(); i++) {
            String w = words.get(i);
            String setting;
            if (w.equals("-c") && i + 1 < words.size()) {
                setting = words.get(++i);
            } else if (w.startsWith("-c")) {
                setting = w.substring(2);
            } else if (w.startsWith("--")) {
                setting = w.substring(2);
            } else {
                throw new IllegalArgumentException(
                        "unsupported option in startup parameter \"options\": " + w);
            }
            int eq = setting.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException(
                        "invalid option in startup parameter \"options\": " + setting);
            }
            into.put(
                    canonicalName(setting.substring(0, eq).replace('-', '_')),
                    setting.substring(eq + 1));
        }
    }

    /**
     * The session parameters a startup packet asks for (canonical names, {@code options -c}
     * included), without protocol extensions ({@code _pq_.}), parameters the operator ignores and
     * those that only matter at login.
     *
     * @throws IllegalArgumentException for malformed options or a name PostgreSQL would refuse
     */
    static Map<String, String> requested(
            Map<String, String> startupParameters, Set<String> ignored) {
        Map<String, String> requested = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : startupParameters.entrySet()) {
            String name = e.getKey();
            if (name.startsWith("_pq_.") || ignored.contains(name)) {
                continue;
            }
            if (name.equals("options")) {
                parseOptions(e.getValue(), requested);
            } else if (!STARTUP_ONLY.contains(name)) {
                requested.put(canonicalName(name), e.getValue());
            }
        }
        for (String name : requested.keySet()) {
            if (!isValidName(name)) {
                throw new IllegalArgumentException(
                        "invalid startup parameter name: \"" + name + "\"");
            }
        }
        return requested;
    }
}
