package io.pgrelay.bench.harness;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Yandex Odyssey (built from source: benchmarks/build-odyssey.sh), set up like PgBouncer. */
final class OdysseyTarget implements Proxy {
    private final Context ctx;
    private final Path pidfile;

    OdysseyTarget(Context ctx) {
        this.ctx = ctx;
        this.pidfile = ctx.work.resolve("odyssey.pid");
    }

    @Override
    public boolean start() {
        Settings s = ctx.settings;
        String bin = s.odyssey;
        if (!Proc.onPath(bin)) {
            ctx.skipReason.put(
                    "odyssey",
                    bin
                            + " not found (build it: benchmarks/build-odyssey.sh GIT_DIR; or set ODYSSEY)");
            return false;
        }
        Path conf = ctx.work.resolve("odyssey.conf");
        Path logfile = ctx.work.resolve("odyssey.log");
        Path locks = ctx.work.resolve("odyssey-locks");
        int port = ctx.ports.free();
        boolean tls = ctx.tlsMode != TlsMode.OFF;
        try {
            Files.createDirectories(locks);
        } catch (java.io.IOException e) {
            throw new HarnessException("cannot create " + locks);
        }
        String text =
                "# Odyssey for pgbench-compare.sh: transaction pooling, pool size and logins as PgBouncer's\n"
                        + "daemonize yes\n"
                        + "pid_file \""
                        + pidfile
                        + "\"\n"
                        + "log_file \""
                        + logfile
                        + "\"\n"
                        + "log_to_stdout no\n"
                        + "log_format \"%p %t %l [%i %s] (%c) %m\\n\"\n"
                        + "log_config yes\nlog_session no\nlog_query no\nlog_stats no\nlog_debug no\n"
                        + "# worker threads: pgrelay's default number of event loops (half the cores, at least one)\n"
                        + "workers "
                        + s.odysseyWorkers
                        + "\n"
                        + "resolvers 1\n"
                        + "client_max "
                        + s.maxClientConn
                        + "\n"
                        + "nodelay yes\nenable_online_restart no\n"
                        + "locks_dir \""
                        + locks
                        + "\"\n"
                        + "graceful_shutdown_timeout_ms 1000\n\n"
                        + "listen {\n"
                        + "    host \""
                        + Settings.HOST
                        + "\"\n"
                        + "    port "
                        + port
                        + "\n"
                        + "    # PgBouncer's listen_backlog default\n"
                        + "    backlog 128\n"
                        + "    tls \""
                        + (tls ? "require" : "disable")
                        + "\"\n"
                        + (tls
                                ? "    tls_cert_file \""
                                        + ctx.tlsCertFile()
                                        + "\"\n"
                                        + "    tls_key_file \""
                                        + ctx.tlsKeyFile()
                                        + "\"\n"
                                : "")
                        + "}\n\n"
                        + "storage \"postgres\" {\n"
                        + "    type \"remote\"\n"
                        + "    host \""
                        + Settings.HOST
                        + "\"\n"
                        + "    port "
                        + ctx.pgPort
                        + "\n"
                        + "    tls \""
                        + ctx.tlsMode.serverSslmode()
                        + "\"\n"
                        + "}\n\n"
                        + "database \""
                        + Settings.BENCH_DB
                        + "\" {\n"
                        + "    user \""
                        + Settings.BENCH_USER
                        + "\" {\n"
                        + "        # the plain-text secret PgBouncer reads from the userlist: SCRAM towards the client, and\n"
                        + "        # storage_password for Odyssey's own SCRAM login to PostgreSQL\n"
                        + "        authentication \"scram-sha-256\"\n"
                        + "        password \""
                        + Settings.BENCH_PASSWORD
                        + "\"\n"
                        + "        storage \"postgres\"\n"
                        + "        storage_password \""
                        + Settings.BENCH_PASSWORD
                        + "\"\n"
                        + "        pool \"transaction\"\n"
                        + "        pool_size "
                        + s.poolSize
                        + "\n"
                        + "        pool_timeout 0\n        pool_ttl 0\n"
                        + "        # no reset query between transactions (PgBouncer runs none in transaction mode)\n"
                        + "        pool_discard no\n        pool_smart_discard no\n"
                        + "        pool_cancel yes\n        pool_rollback yes\n"
                        + "        # protocol-level prepared statements mapped across server connections (pgbench -M prepared)\n"
                        + "        pool_reserve_prepared_statement yes\n"
                        + "        client_fwd_error yes\n"
                        + "        log_debug no\n"
                        + "    }\n"
                        + "}\n";
        Text.write(conf, text);
        ctx.proc.chownToPg(conf, locks);
        Text.write(ctx.results.resolve(ctx.prefix + "odyssey.conf"), text);
        String version =
                PgBouncerTarget.firstLine(
                        ctx.proc
                                .capture(
                                        List.of("sh", "-c", "\"$0\" --version 2>/dev/null", bin),
                                        Map.of())
                                .output());
        ctx.version.put("odyssey", version);
        Log.log(
                "odyssey: "
                        + version
                        + " ("
                        + bin
                        + "), port "
                        + port
                        + ", pool_size "
                        + s.poolSize
                        + ", transaction mode, workers "
                        + s.odysseyWorkers
                        + ", pool_reserve_prepared_statement yes"
                        + ctx.tlsMode.note());
        Proc.Result r = ctx.proc.capture(ctx.proc.asPg(List.of(bin, conf.toString())), Map.of());
        if (!r.ok()) {
            return fail(
                    "odyssey failed to start: "
                            + Text.hereSpaced(r.output())
                            + " "
                            + Text.tailSpaced(logfile, 5));
        }
        if (!Ports.waitFor(port, Settings.START_TIMEOUT, null)) {
            return fail(
                    "odyssey not listening on "
                            + port
                            + " after "
                            + Settings.START_TIMEOUT
                            + "s: "
                            + Text.tailSpaced(logfile, 5));
        }
        r = ctx.checkSql(port, "odyssey");
        if (!r.ok()) {
            return fail("login through odyssey failed: " + Text.hereSpaced(r.output()));
        }
        Long pid = pid();
        Log.log(
                "odyssey pid "
                        + (pid == null ? "?" : pid)
                        + ", threads "
                        + (pid == null ? "?" : Context.procField(pid, "status", "Threads:", 1))
                        + ", open-files limit "
                        + (pid == null
                                ? "?"
                                : Context.procField(pid, "limits", "Max open files", 3)));
        ctx.port.put("odyssey", port);
        return true;
    }

    private boolean fail(String reason) {
        ctx.skipReason.put("odyssey", reason);
        stop();
        return false;
    }

    @Override
    public void stop() {
        ctx.proc.stopPidfile(pidfile, "TERM");
    }

    @Override
    public Long pid() {
        return Proc.pidfilePid(pidfile);
    }
}
