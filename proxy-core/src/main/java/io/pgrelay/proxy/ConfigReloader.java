package io.pgrelay.proxy;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigUtil;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import io.pgrelay.auth.UserList;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.tls.TlsContexts;
import io.pgrelay.tls.TlsSetupException;
import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * RELOAD (and SIGHUP) and the console's SET: a new configuration is validated whole, the auth file
 * read again, and then it replaces the running one. Settings that cannot change while running keep
 * their old effect until a restart, and the log says which.
 */
final class ConfigReloader {

    private static final Logger log = LoggerFactory.getLogger(ConfigReloader.class);

    /** Settings a RELOAD or SET may change on a running proxy (prefixes of setting paths). */
    static final List<String> RELOADABLE =
            List.of(
                    "pool.max_client_conn",
                    "pool.default_pool_size",
                    "pool.min_pool_size",
                    "pool.reserve_pool",
                    "pool.query_wait_timeout",
                    "pool.server_idle_timeout",
                    "pool.server_lifetime",
                    "pool.autodb_idle_timeout",
                    "pool.welcome_max_age",
                    "pool.server_connect_timeout",
                    "pool.client_idle_timeout",
                    "pool.idle_transaction_timeout",
                    "pool.client_login_timeout",
                    "pool.server_reset_query",
                    "pool.ignore_startup_parameters",
                    "pool.max_prepared_statements",
                    "pool.track_session_state",
                    "pool.max_pinned_connections",
                    "pool.pool_mode",
                    "auth.",
                    "tls.",
                    // Where peers are; this instance's own id is in the keys it has issued.
                    "peers.static_peers",
                    "admin.admin_users",
                    "admin.stats_users",
                    "admin.max_pool_metrics",
                    "protocol.",
                    // Socket options of connections opened after the change.
                    "tcp.",
                    "routing.patroni.max_replica_lag_bytes",
                    "routing.patroni.read_fallback_to_primary",
                    "routing.patroni.leader_wait_timeout",
                    "limits.max_client_prepared_statements",
                    "limits.max_client_prepared_statement_bytes",
                    "limits.max_login_clients");

    private final RelayServices services;
    private final File configFile;

    ConfigReloader(RelayServices services, File configFile) {
        this.services = services;
        this.configFile = configFile;
    }

    static boolean isReloadable(String setting) {
        return RELOADABLE.stream().anyMatch(setting::startsWith);
    }

    /** Re-reads the config file and the auth file. Returns an error message or null. */
    String reload() {
        ProxyConfig next;
        try {
            next = ProxyConfig.load(configFile);
        } catch (RuntimeException e) {
            log.warn("reload rejected, keeping the running configuration: {}", e.getMessage());
            return "reload rejected: " + e.getMessage();
        }
        return apply(next, "reload");
    }

    /**
     * SET key = value from the console: as if the file said so. Returns an error message or null.
     */
    String set(String key, String value) {
        ProxyConfig current = services.config();
        String path = key.startsWith("pgrelay.") ? key.substring(8) : key;
        if (!current.settings().containsKey(path)) {
            // PgBouncer names without the section: find the one setting that ends with it.
            List<String> candidates =
                    current.settings().keySet().stream()
                            .filter(k -> k.endsWith("." + key))
                            .toList();
            if (candidates.size() != 1) {
                return "unknown setting: " + key;
            }
            path = candidates.get(0);
        }
        if (!isReloadable(path)) {
            return "setting " + path + " cannot be changed while running (restart pgrelay)";
        }
        ProxyConfig next;
        try {
            Config override =
                    ConfigFactory.parseString(
                            "pgrelay." + path + " = " + ConfigUtil.quoteString(value));
            Config merged = override.withFallback(asConfig(current)).resolve();
            next = ProxyConfig.from(merged.getConfig("pgrelay"));
        } catch (RuntimeException e) {
            return "invalid value for " + path + ": " + e.getMessage();
        }
        return apply(next, "SET " + path);
    }

    /** The running configuration as HOCON, lists as lists, over the defaults. */
    private static Config asConfig(ProxyConfig current) {
        Map<String, Object> m = new HashMap<>();
        Config defaults = ProxyConfig.defaults().resolve();
        current.settings()
                .forEach(
                        (k, v) -> {
                            ConfigValue d =
                                    defaults.hasPath("pgrelay." + k)
                                            ? defaults.getValue("pgrelay." + k)
                                            : null;
                            if (d != null && d.valueType() == ConfigValueType.LIST) {
                                m.put(
                                        "pgrelay." + k,
                                        v.isEmpty() ? List.of() : List.of(v.split(",")));
                            } else {
                                m.put("pgrelay." + k, v);
                            }
                        });
        return ConfigFactory.parseMap(m).withFallback(defaults);
    }

    private synchronized String apply(ProxyConfig next, String why) {
        ProxyConfig old = services.config();
        UserList users;
        try {
            users = UserList.load(next.authFile());
        } catch (IOException | RuntimeException e) {
            log.warn("{} rejected: auth_file {}: {}", why, next.authFile(), e.getMessage());
            return why + " rejected: auth_file " + next.authFile() + ": " + e.getMessage();
        }
        TlsContexts tls;
        try {
            // Read again even when the settings are unchanged: renewed certificates keep their
            // file names.
            tls = TlsContexts.build(next.clientTls(), next.serverTls());
        } catch (TlsSetupException e) {
            log.warn("{} rejected, keeping the running TLS files: {}", why, e.getMessage());
            return why + " rejected: " + e.getMessage();
        }
        List<String> needRestart = new ArrayList<>();
        old.settings()
                .forEach(
                        (k, v) -> {
                            if (!v.equals(next.settings().get(k)) && !isReloadable(k)) {
                                needRestart.add(k);
                            }
                        });
        services.credentials().replace(users);
        services.replaceTls(tls);
        services.authQuery().reconfigure(next.authQuery());
        // Sessions read the configuration where they use it, so connected clients get the new
        // timeouts and limits from their next check on.
        services.replaceConfig(next);
        PatroniRouter patroni = services.patroni();
        if (patroni != null) {
            patroni.reconfigure(next.maxReplicaLagBytes(), next.readFallbackToPrimary());
        }
        if (!next.tcp().equals(old.tcp())) {
            TcpOptions.warnIfIgnored(services.transport(), next.tcp());
        }
        if (!next.poolSettings().equals(old.poolSettings())) {
            for (ServerPool p : services.pools().all()) {
                p.pool().updateSettings(next.poolSettings());
            }
        }
        List<String> changed = new ArrayList<>();
        next.settings()
                .forEach(
                        (k, v) -> {
                            if (!v.equals(old.settings().get(k)) && !needRestart.contains(k)) {
                                changed.add(k + "=" + v);
                            }
                        });
        log.info(
                "{}: applied {}{}",
                why,
                changed.isEmpty() ? "no changes" : changed,
                needRestart.isEmpty() ? "" : "; need a restart to take effect: " + needRestart);
        return null;
    }
}
