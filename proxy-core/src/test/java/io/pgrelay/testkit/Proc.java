package io.pgrelay.testkit;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * Runs an external command with a timeout and captures its output. Used for every external program
 * the test kit starts (initdb, pg_ctl, psql, pg_basebackup, ...).
 *
 * <pre>{@code
 * Proc.Result r = Proc.of("psql", "-c", "select 1").asPostgresOwner().timeout(Duration.ofSeconds(10)).check();
 * }</pre>
 *
 * <p>Output is redirected to temporary files (not pipes), so a command that leaves a daemon behind
 * (e.g. {@code pg_ctl start}) never blocks the caller. Standard input is {@code /dev/null} unless
 * {@link #stdin(String)} is given. On timeout the process and all its descendants are SIGKILLed and
 * a {@link ProcException} is thrown.
 *
 * <p>{@link #asPostgresOwner()}: PostgreSQL refuses to run as root, so when this JVM runs as root
 * the command is wrapped in {@code runuser -u postgres --} (the OS user can be changed with the
 * system property {@code pgrelay.testkit.pg_os_user}); otherwise it runs as the current user.
 * {@code runuser -u} keeps the environment (apart from HOME/SHELL/USER/LOGNAME), so variables set
 * with {@link #env(String, String)} reach the command.
 */
public final class Proc {

    /** Timeout used when none is given. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    private static volatile Boolean root;

    private final List<String> command;
    private final Map<String, String> env = new LinkedHashMap<>();
    private boolean asPostgresOwner;
    private boolean stripPgEnv;
    private Path directory;
    private String stdin;
    private Duration timeout = DEFAULT_TIMEOUT;

    private Proc(List<String> command) {
        if (command.isEmpty()) {
            throw new IllegalArgumentException("empty command");
        }
        this.command = List.copyOf(command);
    }

    /** A command: program followed by its arguments (no shell involved). */
    public static Proc of(String... command) {
        return new Proc(List.of(command));
    }

    /** A command: program followed by its arguments (no shell involved). */
    public static Proc of(List<String> command) {
        return new Proc(command);
    }

    /** Run as the PostgreSQL OS user when this JVM is root, else as the current user. */
    public Proc asPostgresOwner() {
        this.asPostgresOwner = true;
        return this;
    }

    /** Sets an environment variable for the command. */
    public Proc env(String name, String value) {
        env.put(Objects.requireNonNull(name), Objects.requireNonNull(value));
        return this;
    }

    /**
     * Removes all inherited {@code PG*} variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSERVICE,
     * PGOPTIONS, ...) so libpq tools only see what is passed explicitly; also sets {@code
     * LC_ALL=C}. Variables set with {@link #env} are kept.
     */
    public Proc cleanPgEnv() {
        this.stripPgEnv = true;
        return this;
    }

    /** Working directory (default: the JVM's). */
    public Proc directory(Path dir) {
        this.directory = dir;
        return this;
    }

    /** Text fed to standard input (UTF-8). */
    public Proc stdin(String input) {
        this.stdin = input;
        return this;
    }

    /** Maximum run time; the process tree is killed when exceeded. */
    public Proc timeout(Duration timeout) {
        this.timeout = Objects.requireNonNull(timeout);
        return this;
    }

    /** The command line that will actually be executed (including a {@code runuser} prefix). */
    public List<String> commandLine() {
        if (asPostgresOwner && isRoot()) {
            List<String> wrapped = new ArrayList<>();
            wrapped.add(runuserBinary());
            wrapped.add("-u");
            wrapped.add(postgresOsUser());
            wrapped.add("--");
            wrapped.addAll(command);
            return wrapped;
        }
        return command;
    }

    /**
     * Runs the command and waits for it. Returns the result whatever the exit code.
     *
     * @throws ProcException if the command cannot be started or times out
     */
    public Result run() {
        Path out = null;
        Path err = null;
        Path in = null;
        long startNanos = System.nanoTime();
        List<String> cmdLine = commandLine();
        try {
            out = Files.createTempFile("pgrelay-proc-", ".out");
            err = Files.createTempFile("pgrelay-proc-", ".err");
            ProcessBuilder pb = new ProcessBuilder(cmdLine);
            pb.redirectOutput(out.toFile());
            pb.redirectError(err.toFile());
            if (stdin != null) {
                in = Files.createTempFile("pgrelay-proc-", ".in");
                Files.writeString(in, stdin, StandardCharsets.UTF_8);
                pb.redirectInput(in.toFile());
            } else {
                pb.redirectInput(new File("/dev/null"));
            }
            if (directory != null) {
                pb.directory(directory.toFile());
            }
            Map<String, String> environment = pb.environment();
            if (stripPgEnv) {
                environment.keySet().removeIf(k -> k.startsWith("PG"));
                environment.put("LC_ALL", "C");
            }
            environment.putAll(env);

            Process process;
            try {
                process = pb.start();
            } catch (IOException e) {
                throw new ProcException("cannot start " + cmdLine + ": " + e.getMessage(), null, e);
            }
            boolean finished;
            try {
                finished = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                killTree(process.toHandle());
                Thread.currentThread().interrupt();
                throw new ProcException("interrupted while running " + cmdLine, null, e);
            }
            if (!finished) {
                killTree(process.toHandle());
                try {
                    process.waitFor(5, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                Result partial =
                        new Result(
                                cmdLine,
                                -1,
                                read(out),
                                read(err),
                                Duration.ofNanos(System.nanoTime() - startNanos));
                throw new ProcException(
                        "timed out after "
                                + timeout.toMillis()
                                + " ms: "
                                + cmdLine
                                + "\n--- stdout ---\n"
                                + tail(partial.stdout(), 40)
                                + "\n--- stderr ---\n"
                                + tail(partial.stderr(), 40),
                        partial,
                        null);
            }
            return new Result(
                    cmdLine,
                    process.exitValue(),
                    read(out),
                    read(err),
                    Duration.ofNanos(System.nanoTime() - startNanos));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            deleteQuietly(out);
            deleteQuietly(err);
            deleteQuietly(in);
        }
    }

    /**
     * Runs the command and requires exit code 0.
     *
     * @throws ProcException (with stderr/stdout in the message) on non-zero exit, start failure or
     *     timeout
     */
    public Result check() {
        Result r = run();
        if (r.exitCode() != 0) {
            throw new ProcException(
                    "exit code "
                            + r.exitCode()
                            + ": "
                            + r.command()
                            + "\n--- stderr ---\n"
                            + tail(r.stderr(), 60)
                            + "\n--- stdout ---\n"
                            + tail(r.stdout(), 20),
                    r,
                    null);
        }
        return r;
    }

    /** True if this JVM runs as uid 0 ({@code id -u}, falling back to {@code user.name}). */
    public static boolean isRoot() {
        Boolean r = root;
        if (r == null) {
            r = detectRoot();
            root = r;
        }
        return r;
    }

    /**
     * The OS user that owns and runs PostgreSQL when this JVM is root (default {@code postgres}).
     */
    public static String postgresOsUser() {
        return System.getProperty("pgrelay.testkit.pg_os_user", "postgres");
    }

    /** SIGKILLs a process and all its descendants (descendants first collected, then killed). */
    public static void killTree(ProcessHandle handle) {
        List<ProcessHandle> descendants = handle.descendants().toList();
        handle.destroyForcibly();
        for (ProcessHandle d : descendants) {
            d.destroyForcibly();
        }
    }

    /** Last {@code maxLines} lines of a text. */
    public static String tail(String text, int maxLines) {
        if (text == null) {
            return "";
        }
        String[] lines = text.split("\n", -1);
        if (lines.length <= maxLines) {
            return text;
        }
        StringBuilder sb =
                new StringBuilder("[... ")
                        .append(lines.length - maxLines)
                        .append(" lines cut ...]\n");
        for (int i = lines.length - maxLines; i < lines.length; i++) {
            sb.append(lines[i]);
            if (i < lines.length - 1) {
                sb.append('\n');
            }
        }
        return sb.toString();
    }

    private static boolean detectRoot() {
        try {
            Process p = new ProcessBuilder("id", "-u").redirectErrorStream(true).start();
            String outText =
                    new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0) {
                return "0".equals(outText);
            }
        } catch (IOException e) {
            // fall through to user.name
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return "root".equals(System.getProperty("user.name"));
    }

    private static String runuserBinary() {
        for (String candidate : List.of("/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser")) {
            if (Files.isExecutable(Path.of(candidate))) {
                return candidate;
            }
        }
        return "runuser";
    }

    private static String read(Path p) throws IOException {
        if (p == null || !Files.exists(p)) {
            return "";
        }
        return Files.readString(p, StandardCharsets.UTF_8);
    }

    private static void deleteQuietly(Path p) {
        if (p != null) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // best effort
            }
        }
    }

    /** Outcome of a finished command. */
    public record Result(
            List<String> command, int exitCode, String stdout, String stderr, Duration elapsed) {

        /** True if the exit code is 0. */
        public boolean ok() {
            return exitCode == 0;
        }

        /** Stdout with trailing line breaks removed. */
        public String stdoutTrimmed() {
            return stripTrailingNewlines(stdout);
        }

        static String stripTrailingNewlines(String s) {
            int end = s.length();
            while (end > 0 && (s.charAt(end - 1) == '\n' || s.charAt(end - 1) == '\r')) {
                end--;
            }
            return s.substring(0, end);
        }
    }

    /** A command failed to start, timed out, or (for {@link #check()}) exited non-zero. */
    public static final class ProcException extends RuntimeException {
        private static final long serialVersionUID = 1L;
        private final transient Result result;

        ProcException(String message, Result result, Throwable cause) {
            super(message, cause);
            this.result = result;
        }

        /** The result if the command ran (exit code -1 on timeout), else null. */
        public Result result() {
            return result;
        }
    }
}
