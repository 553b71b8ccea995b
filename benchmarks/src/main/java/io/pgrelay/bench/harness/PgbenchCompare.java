package io.pgrelay.bench.harness;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * benchmarks/pgbench-compare.sh: direct PostgreSQL vs PgBouncer vs pgrelay (and the optional peers)
 * on loopback, and the memory per idle client. --help prints the full documentation.
 */
public final class PgbenchCompare {
    private static final DateTimeFormatter STAMP =
            DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'");
    static final DateTimeFormatter HEADING_DATE =
            DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'");

    private PgbenchCompare() {}

    public static void main(String[] args) {
        Path repoRoot = repoRoot();
        Settings settings;
        int cores = cores();
        try {
            settings =
                    Settings.parse(
                            List.of(args),
                            new Settings.Machine(
                                    repoRoot,
                                    Path.of("").toAbsolutePath(),
                                    cores,
                                    Proc::onPath,
                                    System.getenv()));
        } catch (Settings.UsageException e) {
            System.err.print(help());
            Log.log("ERROR: " + e.getMessage());
            System.exit(1);
            return;
        } catch (HarnessException e) {
            Log.log("ERROR: " + e.getMessage());
            System.exit(1);
            return;
        }
        if (settings.help) {
            System.out.print(help());
            System.out.flush();
            return;
        }
        try {
            run(settings, repoRoot, cores);
        } catch (HarnessException e) {
            Log.log("ERROR: " + e.getMessage());
            System.exit(1);
        }
    }

    private static void run(Settings s, Path repoRoot, int cores) {
        Proc proc = new Proc(System.getenv(), s.pgsslmode);
        warnAboutFdLimit(s);
        Path resultsRoot = repoRoot.resolve("benchmarks/results");
        Path results = resultsRoot.resolve(ZonedDateTime.now(ZoneOffset.UTC).format(STAMP));
        Path work;
        try {
            Files.createDirectories(results);
            // Keep results out of git without touching tracked files ("*" also ignores this
            // .gitignore).
            if (!Files.exists(resultsRoot.resolve(".gitignore"))) {
                Text.write(resultsRoot.resolve(".gitignore"), "*\n");
            }
            work = makeWorkDir();
            Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
        } catch (IOException e) {
            throw new HarnessException(
                    "cannot create the results or work directory: " + e.getMessage());
        }
        proc.workIn(work);
        Context ctx = new Context(s, proc, repoRoot, work, results, cores);
        PostgresServer postgres = new PostgresServer(ctx);
        postgres.prepareDirs();
        proc.chownToPg(work, postgres.sockDir());
        Targets targets = new Targets(ctx);
        IdleTest idle = new IdleTest(ctx, targets);
        Cleanup cleanup = new Cleanup(ctx, targets, postgres, idle);
        Runtime.getRuntime().addShutdownHook(new Thread(cleanup::run, "pgbench-compare-cleanup"));

        if (s.tlsUsed) {
            TlsFiles.make(ctx);
        }
        postgres.start();
        Path userlist = work.resolve("userlist.txt");
        Text.write(
                userlist, "\"" + Settings.BENCH_USER + "\" \"" + Settings.BENCH_PASSWORD + "\"\n");
        proc.capture(List.of("chmod", "600", userlist.toString()), Map.of());
        proc.chownToPg(userlist);

        long clockTicks =
                Long.parseLong(
                        proc.capture(List.of("getconf", "CLK_TCK"), Map.of()).output().trim());
        List<String> sections = new ArrayList<>();
        for (int m = 0; m < s.tlsModes.size(); m++) {
            ctx.tlsMode = TlsMode.of(s.tlsModes.get(m));
            ctx.prefix = ctx.tlsMode.prefix();
            if (m > 0) {
                Log.log("TLS mode " + ctx.tlsMode.word + ": restarting the proxies");
                targets.stopAll();
            }
            Results res = new Results();
            targets.startAll();
            new RunLoop(ctx, targets, res, clockTicks).runAll();
            PointsReport.Section sec =
                    new PointsReport.Section(
                            ctx.tlsMode,
                            targets.active,
                            Map.copyOf(ctx.skipReason),
                            res,
                            headingDate(),
                            cores);
            sections.add(Summary.section(ctx, sec));
        }
        List<String> notes = new ArrayList<>(s.notes);
        idle.run(notes);
        String summary =
                Summary.render(
                        s,
                        sections,
                        notes,
                        idle.done,
                        idle.notes,
                        headingDate(),
                        cores,
                        repoRoot.relativize(results).toString());
        Proc.haltIfStopping();
        System.out.print(summary);
        System.out.flush();
        Text.write(results.resolve("summary.md"), summary);
    }

    /** mktemp -d /tmp/pgrelay-bench.XXXXXX: the same names as before, for whoever looks in /tmp. */
    private static Path makeWorkDir() throws IOException {
        String chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        java.security.SecureRandom random = new java.security.SecureRandom();
        for (int attempt = 0; ; attempt++) {
            StringBuilder name = new StringBuilder("pgrelay-bench.");
            for (int i = 0; i < 6; i++) {
                name.append(chars.charAt(random.nextInt(chars.length())));
            }
            try {
                return Files.createDirectory(Path.of("/tmp", name.toString()));
            } catch (java.nio.file.FileAlreadyExistsException e) {
                if (attempt > 100) {
                    throw e;
                }
            }
        }
    }

    static String headingDate() {
        return ZonedDateTime.now(ZoneOffset.UTC).format(HEADING_DATE);
    }

    /**
     * 1000 clients need >1000 fds in pgbench and ~2x that in the proxies; the wrapper raised it.
     */
    private static void warnAboutFdLimit(Settings s) {
        long need = 100;
        List<String> counts = new ArrayList<>(s.clients);
        counts.addAll(s.connectClients);
        for (String c : counts) {
            need = Math.max(need, 2L * Integer.parseInt(c) + 100);
        }
        need = Math.max(need, (long) s.idleClients + s.poolSize + 100);
        long limit = Context.openFilesLimit();
        if (limit >= 0 && limit < need) {
            Log.log(
                    "warning: open-files limit is "
                            + limit
                            + ", these runs need about "
                            + need
                            + " (raise the hard limit)");
        }
    }

    static String help() {
        try (InputStream in = PgbenchCompare.class.getResourceAsStream("help.txt")) {
            if (in == null) {
                return "benchmarks/pgbench-compare.sh: help text missing from the jar\n";
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "benchmarks/pgbench-compare.sh: help text unreadable: " + e.getMessage() + "\n";
        }
    }

    /** The wrapper passes the repository; otherwise the jar's place in benchmarks/target/ tells. */
    private static Path repoRoot() {
        String given = System.getProperty("pgrelay.repo");
        if (given != null && !given.isEmpty()) {
            return Path.of(given).toAbsolutePath().normalize();
        }
        try {
            Path jar =
                    Path.of(
                            PgbenchCompare.class
                                    .getProtectionDomain()
                                    .getCodeSource()
                                    .getLocation()
                                    .toURI());
            return jar.getParent().getParent().getParent().toAbsolutePath().normalize();
        } catch (Exception e) {
            return Path.of("").toAbsolutePath();
        }
    }

    /**
     * nproc, not the JVM's view: the JVM also counts cgroup CPU quotas, the shell version did not.
     */
    private static int cores() {
        try {
            Process p = new ProcessBuilder("nproc").redirectErrorStream(true).start();
            String out =
                    new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            p.waitFor();
            return Integer.parseInt(out);
        } catch (IOException | NumberFormatException e) {
            return Runtime.getRuntime().availableProcessors();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Runtime.getRuntime().availableProcessors();
        }
    }
}
