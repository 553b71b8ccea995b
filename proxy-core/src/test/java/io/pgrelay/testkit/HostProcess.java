package io.pgrelay.testkit;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A long-running process started by {@link TestNetwork.Host#spawn}: standard input is a pipe the
 * test writes to ({@link #send}), standard output and error go to temporary files (never pipes, so
 * the process cannot block on a full one). {@link #close()} SIGKILLs it and its descendants and
 * deletes the files; a {@link TestNetwork} closes the processes it started before it removes their
 * namespaces.
 */
public final class HostProcess implements AutoCloseable {

    private final List<String> command;
    private final Process process;
    private final Path out;
    private final Path err;
    private final OutputStream stdin;

    HostProcess(List<String> command, Process process, Path out, Path err) {
        this.command = List.copyOf(command);
        this.process = process;
        this.out = out;
        this.err = err;
        this.stdin = process.getOutputStream();
    }

    public List<String> command() {
        return command;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** Writes {@code text} (UTF-8) to the process's standard input and flushes it. */
    public HostProcess send(String text) {
        try {
            stdin.write(text.getBytes(StandardCharsets.UTF_8));
            stdin.flush();
            return this;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write to " + command + ": " + e, e);
        }
    }

    /** Closes standard input (end of file for the process). */
    public void closeStdin() {
        try {
            stdin.close();
        } catch (IOException ignored) {
            // the process is gone
        }
    }

    /** Everything written to standard output so far. */
    public String stdout() {
        return read(out);
    }

    /** Everything written to standard error so far. */
    public String stderr() {
        return read(err);
    }

    /** Waits until standard output contains {@code text}; fails (with the output) otherwise. */
    public HostProcess awaitStdout(String text, Duration timeout) {
        Await.until(
                "'" + text + "' from " + command + " (stderr: " + stderr() + ")",
                timeout,
                () -> stdout().contains(text));
        return this;
    }

    /** Waits for the exit; returns the exit code, or -1 if it is still running after timeout. */
    public int waitFor(Duration timeout) {
        try {
            return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)
                    ? process.exitValue()
                    : -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** SIGKILLs the process and its descendants, waits for them briefly, deletes the files. */
    @Override
    public void close() {
        if (process.isAlive()) {
            List<ProcessHandle> all = process.toHandle().descendants().toList();
            Proc.killTree(process.toHandle());
            for (ProcessHandle h : all) {
                try {
                    h.onExit().get(5, TimeUnit.SECONDS);
                } catch (Exception ignored) {
                    // best effort
                }
            }
            waitFor(Duration.ofSeconds(5));
        }
        closeStdin();
        try {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        } catch (IOException ignored) {
            // temp files
        }
    }

    @Override
    public String toString() {
        return "HostProcess[" + process.pid() + " " + command + "]";
    }

    private static String read(Path p) {
        try {
            return Files.exists(p) ? Files.readString(p, StandardCharsets.UTF_8) : "";
        } catch (IOException e) {
            return "(unreadable: " + e + ")";
        }
    }
}
