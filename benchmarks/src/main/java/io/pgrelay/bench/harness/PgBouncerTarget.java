package io.pgrelay.bench.harness;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * PgBouncer: target pgbouncer (Debian's 1.18) or pgbouncer125 (built from source), each with its
 * own ini, pidfile, log and port, both configured alike.
 */
final class PgBouncerTarget implements Proxy {
    private final Context ctx;
    private final String target;
    private final String bin;
    private final Path pidfile;

    PgBouncerTarget(Context ctx, String target) {
        this.ctx = ctx;
        this.target = target;
        this.bin =
                target.equals("pgbouncer125") ? ctx.settings.pgbouncer125 : ctx.settings.pgbouncer;
        this.pidfile = ctx.work.resolve(target + ".pid");
    }

    @Override
    public boolean start() {
        Settings s = ctx.settings;
        boolean v125 = target.equals("pgbouncer125");
        if (!Proc.onPath(bin)) {
            ctx.skipReason.put(
                    target,
                    v125
                            ? bin
                                    + " not found (build it: benchmarks/build-pgbouncer.sh GIT_DIR; or set PGBOUNCER125)"
                            : bin + " not found");
            return false;
        }
        Path ini = ctx.work.resolve(target + ".ini");
        Path logfile = ctx.work.resolve(target + ".log");
        int port = ctx.ports.free();
        String server = ctx.tlsMode.serverSslmode();
        StringBuilder text = new StringBuilder();
        text.append("[databases]\n")
                .append(Settings.BENCH_DB)
                .append(" = host=")
                .append(Settings.HOST)
                .append(" port=")
                .append(ctx.pgPort)
                .append(" dbname=")
                .append(Settings.BENCH_DB)
                .append("\n\n")
                .append("[pgbouncer]\n")
                .append("listen_addr = ")
                .append(Settings.HOST)
                .append('\n')
                .append("listen_port = ")
                .append(port)
                .append('\n')
                .append("unix_socket_dir =\n")
                .append("auth_type = scram-sha-256\n")
                .append("auth_file = ")
                .append(ctx.work.resolve("userlist.txt"))
                .append('\n')
                .append("pool_mode = transaction\n")
                .append("default_pool_size = ")
                .append(s.poolSize)
                .append('\n')
                .append("min_pool_size = 0\nreserve_pool_size = 0\n")
                .append("max_client_conn = ")
                .append(s.maxClientConn)
                .append('\n')
                .append("max_db_connections = 0\n")
                .append("ignore_startup_parameters = extra_float_digits\n")
                .append("server_tls_sslmode = ")
                .append(server)
                .append('\n')
                .append("log_connections = 0\nlog_disconnections = 0\n")
                .append("logfile = ")
                .append(logfile)
                .append('\n')
                .append("pidfile = ")
                .append(pidfile)
                .append('\n');
        if (v125) {
            // 1.21+ maps protocol-level named prepared statements in transaction mode (1.22+
            // defaults
            // to 200; set here so the saved ini shows it).
            text.append("max_prepared_statements = 200\n");
        }
        if (ctx.tlsMode != TlsMode.OFF) {
            text.append("client_tls_sslmode = require\n")
                    .append("client_tls_key_file = ")
                    .append(ctx.tlsKeyFile())
                    .append('\n')
                    .append("client_tls_cert_file = ")
                    .append(ctx.tlsCertFile())
                    .append('\n');
        }
        Text.write(ini, text.toString());
        ctx.proc.chownToPg(ini);
        Text.write(ctx.results.resolve(ctx.prefix + target + ".ini"), text.toString());
        String version = firstLine(ctx.proc.capture(List.of(bin, "--version"), Map.of()).output());
        ctx.version.put(target, version);
        Log.log(
                target
                        + ": "
                        + version
                        + " ("
                        + bin
                        + "), port "
                        + port
                        + ", pool_size "
                        + s.poolSize
                        + ", transaction mode"
                        + (v125 ? ", max_prepared_statements 200" : "")
                        + ctx.tlsMode.note());
        Proc.Result r =
                ctx.proc.capture(ctx.proc.asPg(List.of(bin, "-d", "-q", ini.toString())), Map.of());
        if (!r.ok()) {
            ctx.skipReason.put(
                    target,
                    target + " failed to start: " + r.output() + " " + Text.tail(logfile, 5));
            return false;
        }
        if (!Ports.waitFor(port, Settings.START_TIMEOUT, null)) {
            ctx.skipReason.put(
                    target,
                    target
                            + " not listening on "
                            + port
                            + " after "
                            + Settings.START_TIMEOUT
                            + "s: "
                            + Text.tail(logfile, 5));
            ctx.proc.stopPidfile(pidfile, "QUIT");
            return false;
        }
        r = ctx.checkSql(port, target);
        if (!r.ok()) {
            ctx.skipReason.put(target, "login through " + target + " failed: " + r.output());
            ctx.proc.stopPidfile(pidfile, "QUIT");
            return false;
        }
        Long pid = pid();
        Log.log(
                target
                        + " pid "
                        + pid
                        + ", open-files limit "
                        + (pid == null
                                ? "?"
                                : Context.procField(pid, "limits", "Max open files", 3)));
        ctx.port.put(target, port);
        return true;
    }

    /** PgBouncer 1.23+ waits for its clients on SIGTERM and shuts down at once on SIGQUIT. */
    @Override
    public void stop() {
        ctx.proc.stopPidfile(pidfile, target.equals("pgbouncer125") ? "QUIT" : "TERM");
    }

    @Override
    public Long pid() {
        return Proc.pidfilePid(pidfile);
    }

    static String firstLine(String text) {
        int nl = text.indexOf('\n');
        return nl < 0 ? text : text.substring(0, nl);
    }
}
