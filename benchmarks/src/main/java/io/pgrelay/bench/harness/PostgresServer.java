package io.pgrelay.bench.harness;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** The throw-away PostgreSQL 15: fast, non-durable settings, scram logins, user "bench". */
final class PostgresServer {
    private final Context ctx;
    private final Path pgdata;
    private final Path sockDir;
    private boolean started;

    PostgresServer(Context ctx) {
        this.ctx = ctx;
        this.pgdata = ctx.work.resolve("pgdata");
        this.sockDir = ctx.work.resolve("sock");
    }

    private String bin(String tool) {
        return ctx.settings.pgBindir + "/" + tool;
    }

    void start() {
        Settings s = ctx.settings;
        Proc proc = ctx.proc;
        ctx.pgPort = ctx.ports.free();
        ctx.port.put("direct", ctx.pgPort);
        Log.log(
                "PostgreSQL: initdb in "
                        + pgdata
                        + ", port "
                        + ctx.pgPort
                        + " (as "
                        + proc.pgOsUser
                        + ")");
        Path initLog = ctx.work.resolve("initdb.log");
        int rc =
                proc.runTo(
                        proc.asPg(
                                List.of(
                                        bin("initdb"),
                                        "-D",
                                        pgdata.toString(),
                                        "-U",
                                        "postgres",
                                        "--auth-local=trust",
                                        "--auth-host=scram-sha-256",
                                        "-E",
                                        "UTF8",
                                        "--locale=C",
                                        "--no-sync")),
                        Map.of(),
                        initLog);
        if (rc != 0) {
            System.err.print(Text.read(initLog));
            throw new HarnessException("initdb failed");
        }
        StringBuilder conf = new StringBuilder();
        conf.append("# pgrelay benchmark overrides (fast, NOT durable)\n")
                .append("listen_addresses = '")
                .append(Settings.HOST)
                .append("'\n")
                .append("port = ")
                .append(ctx.pgPort)
                .append('\n')
                .append("unix_socket_directories = '")
                .append(sockDir)
                .append("'\n")
                .append("max_connections = ")
                .append(Settings.PG_MAX_CONNECTIONS)
                .append('\n')
                .append("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
                .append("shared_buffers = 256MB\nwal_level = replica\nmax_wal_senders = 10\n")
                .append("password_encryption = 'scram-sha-256'\n")
                .append("log_line_prefix = '%m [%p] %q%u@%d '\n");
        // TLS to PostgreSQL is only in mode both; otherwise it stays as it was, without ssl.
        if (s.tlsModes.contains("both")) {
            conf.append("ssl = on\n")
                    .append("ssl_cert_file = '")
                    .append(ctx.tlsCertFile())
                    .append("'\n")
                    .append("ssl_key_file = '")
                    .append(ctx.tlsKeyFile())
                    .append("'\n");
        }
        Text.write(ctx.work.resolve("bench.conf"), conf.toString());
        Text.append(pgdata.resolve("postgresql.conf"), conf.toString());
        Text.write(
                pgdata.resolve("pg_hba.conf"),
                "local   all   all                  trust\n"
                        + "host    all   all   "
                        + Settings.HOST
                        + "/32   scram-sha-256\n");
        proc.chownToPg(pgdata.resolve("pg_hba.conf"));
        Text.write(ctx.results.resolve("postgresql-overrides.conf"), conf.toString());

        Path pgLog = ctx.work.resolve("postgres.log");
        rc =
                proc.runTo(
                        proc.asPg(
                                List.of(
                                        bin("pg_ctl"),
                                        "-D",
                                        pgdata.toString(),
                                        "-l",
                                        pgLog.toString(),
                                        "-w",
                                        "-t",
                                        Integer.toString(Settings.START_TIMEOUT),
                                        "start")),
                        Map.of(),
                        null);
        if (rc != 0) {
            System.err.println(Text.tail(pgLog, 30));
            throw new HarnessException("PostgreSQL did not start");
        }
        started = true;
        if (proc.runTo(
                        List.of(
                                bin("pg_isready"),
                                "-q",
                                "-h",
                                Settings.HOST,
                                "-p",
                                Integer.toString(ctx.pgPort),
                                "-t",
                                Integer.toString(Settings.START_TIMEOUT)),
                        Map.of(),
                        null)
                != 0) {
            throw new HarnessException("PostgreSQL not ready");
        }
        for (String sql :
                List.of(
                        "CREATE ROLE "
                                + Settings.BENCH_USER
                                + " LOGIN PASSWORD '"
                                + Settings.BENCH_PASSWORD
                                + "';",
                        "CREATE DATABASE "
                                + Settings.BENCH_DB
                                + " OWNER "
                                + Settings.BENCH_USER
                                + ";")) {
            Proc.Result r =
                    proc.capture(
                            proc.asPg(
                                    List.of(
                                            bin("psql"),
                                            "-X",
                                            "-q",
                                            "-v",
                                            "ON_ERROR_STOP=1",
                                            "-h",
                                            sockDir.toString(),
                                            "-p",
                                            Integer.toString(ctx.pgPort),
                                            "-U",
                                            "postgres",
                                            "-d",
                                            "postgres",
                                            "-c",
                                            sql)),
                            Map.of());
            if (!r.ok()) {
                System.err.println(r.output());
                throw new HarnessException("creating the benchmark user and database failed");
            }
        }
        Log.log("pgbench -i -s " + s.scale);
        Path initOut = ctx.results.resolve("pgbench-init.txt");
        rc =
                proc.runTo(
                        List.of(
                                bin("pgbench"),
                                "-i",
                                "-q",
                                "-s",
                                Integer.toString(s.scale),
                                "-h",
                                Settings.HOST,
                                "-p",
                                Integer.toString(ctx.pgPort),
                                "-U",
                                Settings.BENCH_USER,
                                Settings.BENCH_DB),
                        Map.of("PGPASSWORD", Settings.BENCH_PASSWORD),
                        initOut);
        if (rc != 0) {
            System.err.println(Text.tail(initOut, 20));
            throw new HarnessException("pgbench -i failed");
        }
    }

    /** Creates the socket directory the postgres OS user must be able to write. */
    void prepareDirs() {
        try {
            Files.createDirectories(sockDir);
        } catch (java.io.IOException e) {
            throw new HarnessException("cannot create " + sockDir + ": " + e.getMessage());
        }
    }

    Path sockDir() {
        return sockDir;
    }

    void stop() {
        if (!started) {
            return;
        }
        Proc proc = ctx.proc;
        if (proc.runTo(
                        proc.asPg(
                                List.of(
                                        bin("pg_ctl"),
                                        "-D",
                                        pgdata.toString(),
                                        "-m",
                                        "fast",
                                        "-w",
                                        "-t",
                                        "30",
                                        "stop")),
                        Map.of(),
                        null)
                != 0) {
            proc.runTo(
                    proc.asPg(
                            List.of(
                                    bin("pg_ctl"),
                                    "-D",
                                    pgdata.toString(),
                                    "-m",
                                    "immediate",
                                    "-w",
                                    "-t",
                                    "15",
                                    "stop")),
                    Map.of(),
                    null);
        }
        Path pidfile = pgdata.resolve("postmaster.pid");
        List<String> lines = Text.lines(pidfile);
        if (!lines.isEmpty() && lines.get(0).matches("[0-9]+")) {
            long pid = Long.parseLong(lines.get(0));
            if (Proc.alive(pid)) {
                proc.capture(List.of("kill", "-KILL", Long.toString(pid)), Map.of());
            }
        }
        started = false;
    }
}
