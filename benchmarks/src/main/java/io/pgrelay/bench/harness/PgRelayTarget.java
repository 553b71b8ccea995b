package io.pgrelay.bench.harness;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * pgrelay: target pgrelay (the jar --build makes) or baseline (another build, started the same way
 * on its own ports, to compare two builds in one interleaved run).
 */
final class PgRelayTarget implements Proxy {
    private final Context ctx;
    private final String target;
    private Process process;

    PgRelayTarget(Context ctx, String target) {
        this.ctx = ctx;
        this.target = target;
    }

    @Override
    public boolean start() {
        Settings s = ctx.settings;
        boolean baseline = target.equals("baseline");
        String jar = baseline ? s.baselineJar : s.pgrelayJar;
        if (baseline && jar.isEmpty()) {
            return skip("no baseline jar given (--baseline-jar PATH or BASELINE_JAR=PATH)");
        }
        if (!Files.isRegularFile(Path.of(jar))) {
            if (s.build && !baseline && !build()) {
                return false;
            }
            if (!Files.isRegularFile(Path.of(jar))) {
                return skip(
                        baseline
                                ? "baseline jar " + jar + " not found"
                                : jar + " missing (pass --build to build it)");
            }
        }
        String baselineJava = s.baselineJava.isEmpty() ? s.java : s.baselineJava;
        if (!Proc.onPath(baselineJava) || !Proc.onPath(s.java)) {
            return skip("java ('" + s.java + "' / '" + baselineJava + "') not found");
        }
        int writePort = ctx.ports.free();
        int readPort = ctx.ports.free();
        // Started the way users start it: bin/pgrelay (conf/jvm.options, then JAVA_OPTS; the JVM
        // replaces the script, so the process is the JVM), with the benchmark's settings as -D.
        StringBuilder opts = new StringBuilder(s.javaOpts);
        opts.append(" -Dpgrelay.listen.write_port=")
                .append(writePort)
                .append(" -Dpgrelay.listen.read_port=")
                .append(readPort)
                .append(" -Dpgrelay.listen.host=")
                .append(Settings.HOST)
                .append(" -Dpgrelay.backends.primary=")
                .append(Settings.HOST)
                .append(':')
                .append(ctx.pgPort)
                .append(" -Dpgrelay.auth.auth_file=")
                .append(ctx.work.resolve("userlist.txt"))
                .append(" -Dpgrelay.pool.default_pool_size=")
                .append(s.poolSize)
                .append(" -Dpgrelay.pool.max_client_conn=")
                .append(s.maxClientConn)
                .append(" -Dpgrelay.admin.http_port=0");
        if (s.tlsUsed) { // every mode explicit, even off (server_tls_sslmode defaults to prefer)
            if (ctx.tlsMode == TlsMode.OFF) {
                opts.append(" -Dpgrelay.tls.client_tls_sslmode=disable");
            } else {
                opts.append(
                                " -Dpgrelay.tls.client_tls_sslmode=require -Dpgrelay.tls.client_tls_key_file=")
                        .append(ctx.tlsKeyFile())
                        .append(" -Dpgrelay.tls.client_tls_cert_file=")
                        .append(ctx.tlsCertFile());
            }
            opts.append(" -Dpgrelay.tls.server_tls_sslmode=").append(ctx.tlsMode.serverSslmode());
        }
        String java = s.java;
        if (baseline) {
            opts.append(' ').append(s.baselineOpts);
            java = baselineJava;
        }
        List<String> cmd =
                List.of(
                        "env",
                        "JAVA=" + java,
                        "PGRELAY_JAR=" + jar,
                        "PGRELAY_JVM_OPTIONS=" + s.jvmOptionsFile,
                        "JAVA_OPTS=" + opts,
                        ctx.repoRoot.resolve("bin/pgrelay").toString());
        Path logfile = ctx.work.resolve(ctx.prefix + target + ".log");
        Text.write(
                ctx.results.resolve(ctx.prefix + target + "-command.txt"),
                Text.shellQuoted(cmd) + "\n");
        Log.log(
                target
                        + ": "
                        + jar
                        + ", write port "
                        + writePort
                        + ", read port "
                        + readPort
                        + ", pool_size "
                        + s.poolSize
                        + ctx.tlsMode.note());
        try {
            process =
                    ctx.proc
                            .builder(cmd, Map.of())
                            .redirectErrorStream(true)
                            .redirectOutput(logfile.toFile())
                            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                            .start();
        } catch (IOException e) {
            return skip(target + " could not be started: " + e.getMessage());
        }
        if (!Ports.waitFor(writePort, Settings.START_TIMEOUT, process.pid())) {
            String why = "not listening on " + writePort + " after " + Settings.START_TIMEOUT + "s";
            if (!process.isAlive()) {
                why =
                        "exited with code "
                                + process.exitValue()
                                + " before listening on "
                                + writePort;
            }
            skip(target + " " + why + "; log tail: " + Text.tailSpaced(logfile, 5));
            stop();
            return false;
        }
        Proc.Result r = ctx.checkSql(writePort, target);
        if (!r.ok()) {
            skip("login through " + target + " failed: " + Text.hereSpaced(r.output()));
            stop();
            return false;
        }
        ctx.port.put(target, writePort);
        if (ctx.tlsMode != TlsMode.OFF) {
            Matcher m = Pattern.compile("TLS engine: .*").matcher(Text.read(logfile));
            String engine = m.find() ? m.group() : "";
            ctx.tlsEngine.put(target, engine);
            Log.log(
                    target
                            + " "
                            + (engine.isEmpty() ? "(no \"TLS engine\" line in its log)" : engine));
        }
        return true;
    }

    private boolean build() {
        Log.log("building pgrelay: mvn -B -q -DskipTests package");
        Path buildLog = ctx.results.resolve("pgrelay-build.log");
        try {
            int rc =
                    ctx.proc
                            .builder(List.of("mvn", "-B", "-q", "-DskipTests", "package"), Map.of())
                            .directory(ctx.repoRoot.toFile())
                            .redirectErrorStream(true)
                            .redirectOutput(buildLog.toFile())
                            .start()
                            .waitFor();
            if (rc == 0) {
                return true;
            }
        } catch (IOException e) {
            Text.append(buildLog, e.getMessage() + "\n");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return skip("build failed (see " + buildLog + "): " + Text.tailSpaced(buildLog, 3));
    }

    private boolean skip(String reason) {
        ctx.skipReason.put(target, reason);
        return false;
    }

    @Override
    public void stop() {
        if (process == null) {
            return;
        }
        ctx.proc.terminate(process.pid(), "TERM");
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        process = null;
    }

    @Override
    public Long pid() {
        return process == null ? null : process.pid();
    }
}
