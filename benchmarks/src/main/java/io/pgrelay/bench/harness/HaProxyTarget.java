package io.pgrelay.bench.harness;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** HAProxy in TCP mode in front of PgBouncer 1.18: the setup pgrelay replaces. */
final class HaProxyTarget implements Proxy {
    private final Context ctx;
    private final Path pidfile;

    HaProxyTarget(Context ctx) {
        this.ctx = ctx;
        this.pidfile = ctx.work.resolve("haproxy.pid");
    }

    @Override
    public boolean start() {
        Settings s = ctx.settings;
        String bin = s.haproxy;
        if (!Proc.onPath(bin)) {
            return skip(bin + " not found (apt-get install haproxy)");
        }
        Integer pgbouncerPort = ctx.port.get("pgbouncer");
        if (pgbouncerPort == null) {
            return skip(
                    "it forwards to PgBouncer, which is not running: "
                            + ctx.skipReason.getOrDefault("pgbouncer", "?"));
        }
        int port = ctx.ports.free();
        // HAProxy refuses to start when maxconn needs more fds (two per connection) than it may
        // open;
        // it only serves the pgbench points (at most 1000 clients), not the idle test.
        long hmax = s.maxClientConn + 100;
        long limit = Context.openFilesLimit();
        if (limit >= 0 && hmax > (limit - 200) / 2) {
            hmax = (limit - 200) / 2;
        }
        Path cfg = ctx.work.resolve("haproxy.cfg");
        String text =
                "# HAProxy -> PgBouncer in TCP mode (the setup pgrelay replaces)\n"
                        + "global\n"
                        + "    maxconn "
                        + hmax
                        + "\n\n"
                        + "defaults\n"
                        + "    mode tcp\n"
                        + "    timeout connect 5s\n"
                        + "    # generous: idle pgbench clients (e.g. while 1000 others log in) must not be cut\n"
                        + "    timeout client 1h\n"
                        + "    timeout server 1h\n"
                        + "    timeout check 5s\n\n"
                        + "frontend pgsql\n"
                        + "    bind "
                        + Settings.HOST
                        + ":"
                        + port
                        + "\n"
                        + "    maxconn "
                        + (hmax - 100)
                        + "\n"
                        + "    default_backend pgbouncer\n\n"
                        + "backend pgbouncer\n"
                        + "    balance first\n"
                        + "    server pgbouncer "
                        + Settings.HOST
                        + ":"
                        + pgbouncerPort
                        + " check inter 2s\n";
        Text.write(cfg, text);
        ctx.proc.chownToPg(cfg);
        Text.write(ctx.results.resolve("haproxy.cfg"), text);
        Proc.Result r = ctx.proc.capture(List.of(bin, "-c", "-q", "-f", cfg.toString()), Map.of());
        if (!r.ok()) {
            return skip("haproxy -c rejects the config: " + Text.hereSpaced(r.output()));
        }
        String[] first =
                PgBouncerTarget.firstLine(
                                ctx.proc
                                        .capture(
                                                List.of("sh", "-c", "\"$0\" -v 2>/dev/null", bin),
                                                Map.of())
                                        .output())
                        .trim()
                        .split("\\s+");
        ctx.haproxyVersion =
                first.length >= 3 ? first[0] + " " + first[2] : String.join(" ", first);
        Log.log(
                "HAProxy: "
                        + ctx.haproxyVersion
                        + ", port "
                        + port
                        + ", mode tcp -> PgBouncer port "
                        + pgbouncerPort);
        Path out = ctx.work.resolve("haproxy.out");
        Text.write(out, "");
        if (ctx.proc.runTo(
                        ctx.proc.asPg(
                                List.of(bin, "-D", "-f", cfg.toString(), "-p", pidfile.toString())),
                        Map.of(),
                        out)
                != 0) {
            skip("haproxy failed to start: " + Text.tailSpaced(out, 5));
            stop();
            return false;
        }
        if (!Ports.waitFor(port, Settings.START_TIMEOUT, null)) {
            skip(
                    "haproxy not listening on "
                            + port
                            + " after "
                            + Settings.START_TIMEOUT
                            + "s: "
                            + Text.tailSpaced(out, 5));
            stop();
            return false;
        }
        r = ctx.checkSql(port, "haproxy");
        if (!r.ok()) {
            skip("login through haproxy -> pgbouncer failed: " + Text.hereSpaced(r.output()));
            stop();
            return false;
        }
        Long pid = pid();
        Log.log("HAProxy pid " + (pid == null ? "" : pid));
        ctx.port.put("haproxy", port);
        return true;
    }

    private boolean skip(String reason) {
        ctx.skipReason.put("haproxy", reason);
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
