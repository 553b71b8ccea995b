package io.pgrelay.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigOriginFactory;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueFactory;
import com.typesafe.config.ConfigValueType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Settings from environment variables with readable names, for containers: {@code
 * pgrelay.pool.default_pool_size} is {@code PGRELAY_POOL_DEFAULT_POOL_SIZE} (upper case, '.' →
 * '_'). Typesafe Config's own {@code CONFIG_FORCE_pgrelay_pool_default__pool__size} still works but
 * is hard to write by hand.
 *
 * <p>An env name could stand for several paths ('_' is in both the separators and the names), so
 * names are mapped through the settings the bundled defaults list, never split: the tests check no
 * two settings share a name. A {@code PGRELAY_} variable that names no setting is logged (a typo
 * would otherwise be silently ignored) but does not stop start-up.
 *
 * <p>Values: a list setting takes a comma-separated string ({@code http://etcd1:2379,http://...})
 * or a HOCON list ({@code ["a","b"]}). Any other setting takes the value verbatim, converted as in
 * the file (numbers, booleans, {@code 30s}, {@code 256MiB}); a value in double quotes is read as a
 * HOCON string. Verbatim rather than parsed as HOCON because in HOCON {@code //} starts a comment
 * (URLs) and {@code $} a substitution (SCRAM secrets, auth_query's $1).
 */
public final class EnvOverrides {

    private static final Logger log = LoggerFactory.getLogger(EnvOverrides.class);

    public static final String PREFIX = "PGRELAY_";

    /** Read by bin/pgrelay, not by pgrelay: never taken for a misspelt setting. */
    public static final Set<String> LAUNCHER_VARIABLES =
            Set.of("PGRELAY_JAR", "PGRELAY_JVM_OPTIONS");

    private final Config config;
    private final SortedMap<String, String> applied;
    private final List<String> unknown;

    private EnvOverrides(Config config, SortedMap<String, String> applied, List<String> unknown) {
        this.config = config;
        this.applied = applied;
        this.unknown = unknown;
    }

    /** The variable for a setting path without the root: "pool.default_pool_size". */
    public static String envName(String path) {
        return PREFIX + path.toUpperCase(Locale.ROOT).replace('.', '_');
    }

    /**
     * Env name → setting path (without "pgrelay."), for every setting in {@code defaults} (the
     * whole file, root "pgrelay" included).
     *
     * @throws IllegalStateException when two settings share a name (a change to conf/pgrelay.conf
     *     that the tests catch)
     */
    public static SortedMap<String, String> names(Config defaults) {
        SortedMap<String, String> names = new TreeMap<>();
        for (var e : defaults.getConfig("pgrelay").entrySet()) {
            String path = e.getKey();
            String previous = names.put(envName(path), path);
            if (previous != null) {
                throw new IllegalStateException(
                        envName(path) + " would stand for both " + previous + " and " + path);
            }
        }
        return Collections.unmodifiableSortedMap(names);
    }

    /**
     * The overrides {@code env} holds for the settings in {@code defaults}. Unknown {@code
     * PGRELAY_} variables are logged at WARN.
     *
     * @throws ConfigException when a value cannot be read (a HOCON list that does not parse),
     *     naming the variable
     */
    public static EnvOverrides from(Map<String, String> env, Config defaults) {
        SortedMap<String, String> names = names(defaults);
        Config pgrelayDefaults = defaults.getConfig("pgrelay");
        Config config = ConfigFactory.empty();
        SortedMap<String, String> applied = new TreeMap<>();
        List<String> unknown = new ArrayList<>();
        for (String name : new TreeMap<>(env).keySet()) {
            if (!name.startsWith(PREFIX) || LAUNCHER_VARIABLES.contains(name)) {
                continue;
            }
            String path = names.get(name);
            if (path == null) {
                unknown.add(name);
                continue;
            }
            boolean list = pgrelayDefaults.getValue(path).valueType() == ConfigValueType.LIST;
            config = config.withValue("pgrelay." + path, value(name, env.get(name), list));
            applied.put(path, name);
        }
        for (String name : unknown) {
            log.warn(
                    "environment variable {} names no pgrelay setting and is ignored (settings:"
                            + " PGRELAY_ and the path in conf/pgrelay.conf in upper case, '.' as"
                            + " '_', e.g. PGRELAY_POOL_DEFAULT_POOL_SIZE)",
                    name);
        }
        return new EnvOverrides(
                config, Collections.unmodifiableSortedMap(applied), List.copyOf(unknown));
    }

    private static ConfigValue value(String name, String raw, boolean list) {
        String origin = "environment variable " + name;
        String trimmed = raw.trim();
        if ((list && trimmed.startsWith("[")) || trimmed.startsWith("\"")) {
            try {
                ConfigValue parsed =
                        ConfigFactory.parseString("v = " + trimmed).resolve().getValue("v");
                return parsed.withOrigin(ConfigOriginFactory.newSimple(origin));
            } catch (ConfigException e) {
                throw new ConfigException.Generic(
                        origin + ": cannot read '" + raw + "': " + e.getMessage(), e);
            }
        }
        if (list) {
            List<String> items =
                    Arrays.stream(trimmed.split(","))
                            .map(String::trim)
                            .filter(s -> !s.isEmpty())
                            .toList();
            return ConfigValueFactory.fromIterable(items, origin);
        }
        return ConfigValueFactory.fromAnyRef(raw, origin);
    }

    /** The overrides as a config rooted at "pgrelay", for {@link Config#withFallback}. */
    public Config config() {
        return config;
    }

    /** Setting path → the variable that set it. */
    public SortedMap<String, String> applied() {
        return applied;
    }

    /** PGRELAY_ variables that name no setting (logged at WARN). */
    public List<String> unknown() {
        return unknown;
    }

    /**
     * {@code e} with the variable named when its message is about a setting this environment set
     * and {@code stronger} (system properties) did not override: errors found after the layers were
     * merged (a port out of range, "0 (expected: >= 1)") know only the setting's path.
     */
    public ConfigException blame(ConfigException e, Config stronger) {
        String message = String.valueOf(e.getMessage());
        for (var a : applied.entrySet()) {
            String path = "pgrelay." + a.getKey();
            String name = a.getValue();
            if (stronger.hasPath(path) || message.contains(name)) {
                continue;
            }
            if (Pattern.compile(Pattern.quote(path) + "(?![\\w.])").matcher(message).find()) {
                return new ConfigException.Generic(
                        "environment variable " + name + ": " + message, e);
            }
        }
        return e;
    }
}
