package io.pgrelay.bench.harness;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runs the programs the benchmark drives. Every child gets the same environment the shell version
 * exported (only what is passed explicitly reaches libpq) and runs in the work directory; as root,
 * PostgreSQL and the C proxies run as the {@code postgres} OS user.
 */
final class Proc {
    private static final List<String> LIBPQ_UNSET =
            List.of(
                    "PGHOST",
                    "PGHOSTADDR",
                    "PGPORT",
                    "PGUSER",
                    "PGDATABASE",
                    "PGSERVICE",
                    "PGSERVICEFILE",
                    "PGOPTIONS",
                    "PGPASSFILE",
                    "PGTARGETSESSIONATTRS",
                    "PGAPPNAME");

    /** The command prefix that runs a program as the postgres OS user (empty when not root). */
    final List<String> asPg;

    final String pgOsUser;
    private final Map<String, String> baseEnv;
    private Path workDir;

    Proc(Map<String, String> parentEnv, String pgsslmode) {
        this.baseEnv = new java.util.HashMap<>(parentEnv);
        LIBPQ_UNSET.forEach(baseEnv::remove);
        baseEnv.put("PGSSLMODE", pgsslmode);
        baseEnv.put("PGCONNECT_TIMEOUT", "10");
        baseEnv.put("LC_ALL", "C");
        String user = capture(List.of("id", "-un"), Map.of()).output();
        if (capture(List.of("id", "-u"), Map.of()).output().equals("0")) {
            user = "postgres";
            if (capture(List.of("id", user), Map.of()).code() != 0) {
                throw new HarnessException(
                        "running as root but there is no '" + user + "' OS user");
            }
            // setpriv keeps our raised fd limit (runuser's PAM session resets it to 1024).
            asPg =
                    onPath("setpriv")
                            ? List.of(
                                    "setpriv",
                                    "--reuid=" + user,
                                    "--regid=" + user,
                                    "--init-groups",
                                    "--")
                            : List.of("runuser", "-u", user, "--");
        } else {
            asPg = List.of();
        }
        this.pgOsUser = user;
    }

    void workIn(Path dir) {
        this.workDir = dir;
    }

    record Result(int code, String output) {
        boolean ok() {
            return code == 0;
        }
    }

    /** The command with the postgres-user prefix when running as root. */
    List<String> asPg(List<String> command) {
        List<String> out = new ArrayList<>(asPg);
        out.addAll(command);
        return out;
    }

    /** The thread cleaning up at exit; once set, no other thread may start a program. */
    private static volatile Thread stopper;

    /**
     * Called by the exit hook. On Ctrl-C the main thread keeps running while the hook stops the
     * processes; without this it would go on to the next runs against stopped targets and print a
     * summary of aborted runs, where the shell version simply exited.
     */
    static void stopping() {
        stopper = Thread.currentThread();
    }

    /**
     * Parks any thread but the exit hook's once the run is ending; the JVM halts after the hook.
     */
    static void haltIfStopping() {
        while (stopper != null && Thread.currentThread() != stopper) {
            try {
                Thread.sleep(60_000);
            } catch (InterruptedException e) {
                // keep waiting for the halt
            }
        }
    }

    ProcessBuilder builder(List<String> command, Map<String, String> env) {
        haltIfStopping();
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().clear();
        pb.environment().putAll(baseEnv);
        pb.environment().putAll(env);
        if (workDir != null) {
            pb.directory(workDir.toFile());
        }
        return pb;
    }

    /**
     * Runs to the end; stdout and stderr together, trailing newlines cut as {@code $(...)} does.
     */
    Result capture(List<String> command, Map<String, String> env) {
        try {
            Process p =
                    builder(command, env)
                            .redirectErrorStream(true)
                            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                            .start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            int code = p.waitFor();
            haltIfStopping();
            return new Result(code, out.replaceAll("\n+$", ""));
        } catch (IOException e) {
            return new Result(127, e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(130, "interrupted");
        }
    }

    /** Runs to the end with stdout and stderr appended to a file (or discarded when it is null). */
    int runTo(List<String> command, Map<String, String> env, Path outFile) {
        try {
            ProcessBuilder pb =
                    builder(command, env)
                            .redirectErrorStream(true)
                            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            pb.redirectOutput(
                    outFile == null
                            ? ProcessBuilder.Redirect.DISCARD
                            : ProcessBuilder.Redirect.appendTo(outFile.toFile()));
            int code = pb.start().waitFor();
            haltIfStopping();
            return code;
        } catch (IOException e) {
            return 127;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 130;
        }
    }

    /** {@code command -v}: a path that is an executable file, or a name found on PATH. */
    static boolean onPath(String name) {
        if (name.contains("/")) {
            return Files.isExecutable(Path.of(name)) && !Files.isDirectory(Path.of(name));
        }
        return which(name) != null;
    }

    static Path which(String name) {
        if (name.contains("/")) {
            return Files.isExecutable(Path.of(name)) ? Path.of(name) : null;
        }
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        for (String dir : path.split(":")) {
            Path candidate = Path.of(dir.isEmpty() ? "." : dir, name);
            if (Files.isExecutable(candidate) && !Files.isDirectory(candidate)) {
                return candidate;
            }
        }
        return null;
    }

    static boolean alive(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    /** SIGTERM (or the signal given), up to 10 s to exit, then SIGKILL. */
    void terminate(long pid, String signal) {
        if (!alive(pid)) {
            return;
        }
        capture(List.of("kill", "-" + signal, Long.toString(pid)), Map.of());
        for (int i = 0; i < 100; i++) {
            if (!alive(pid)) {
                return;
            }
            sleep(100);
        }
        capture(List.of("kill", "-KILL", Long.toString(pid)), Map.of());
    }

    /** The pid in a pidfile, or null. */
    static Long pidfilePid(Path pidfile) {
        try {
            String text = Files.readString(pidfile).trim();
            return text.matches("[0-9]+") ? Long.valueOf(text) : null;
        } catch (IOException | UncheckedIOException e) {
            return null;
        }
    }

    /** Stops the daemon a pidfile names, and removes the file. */
    void stopPidfile(Path pidfile, String signal) {
        Long pid = pidfilePid(pidfile);
        if (pid != null) {
            terminate(pid, signal);
        }
        try {
            Files.deleteIfExists(pidfile);
        } catch (IOException e) {
            // a leftover pidfile in the throw-away work dir does no harm
        }
    }

    /** Hands a file to the postgres OS user when the daemons run as that user. */
    void chownToPg(Path... paths) {
        if (asPg.isEmpty()) {
            return;
        }
        List<String> cmd = new ArrayList<>(List.of("chown", "-R", pgOsUser + ":"));
        for (Path p : paths) {
            cmd.add(p.toString());
        }
        capture(cmd, Map.of());
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HarnessException("interrupted");
        }
    }
}
