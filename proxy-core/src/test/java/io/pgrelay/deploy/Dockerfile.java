package io.pgrelay.deploy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.Yaml;

/**
 * The instructions of a Dockerfile, as the deployment tests check and follow them. Enough of the
 * syntax for deploy/Dockerfile (comments, line continuations, {@code ENV k=v ...}, {@code COPY
 * [--flag] src... dest}, exec-form JSON arrays); anything it does not know fails the test rather
 * than being guessed at.
 */
record Dockerfile(List<Instruction> instructions) {

    record Instruction(String keyword, String arguments) {}

    record Copy(List<String> sources, String destination) {
        /** Where {@code source} lands in the image. */
        String target(String source) {
            return destination.endsWith("/")
                    ? destination + Path.of(source).getFileName()
                    : destination;
        }
    }

    record Healthcheck(Map<String, String> options, List<String> command) {
        Duration interval() {
            return goDuration(options.getOrDefault("interval", "30s"));
        }

        int retries() {
            return Integer.parseInt(options.getOrDefault("retries", "3"));
        }
    }

    static Dockerfile read(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<Instruction> out = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String line : lines) {
            String trimmed = line.strip();
            // Docker drops comment lines, inside a continued instruction too.
            if (trimmed.startsWith("#") || (trimmed.isEmpty() && current.length() == 0)) {
                continue;
            }
            boolean continued = trimmed.endsWith("\\");
            current.append(continued ? trimmed.substring(0, trimmed.length() - 1) : trimmed)
                    .append(' ');
            if (!continued) {
                String text = current.toString().strip();
                current.setLength(0);
                int space = text.indexOf(' ');
                out.add(
                        new Instruction(
                                text.substring(0, space).toUpperCase(Locale.ROOT),
                                text.substring(space + 1).strip()));
            }
        }
        return new Dockerfile(List.copyOf(out));
    }

    private List<String> all(String keyword) {
        return instructions.stream()
                .filter(i -> i.keyword().equals(keyword))
                .map(Instruction::arguments)
                .toList();
    }

    /** The last one, as Docker takes it. */
    private String last(String keyword) {
        List<String> all = all(keyword);
        if (all.isEmpty()) {
            throw new AssertionError("no " + keyword + " in the Dockerfile");
        }
        return all.get(all.size() - 1);
    }

    String workdir() {
        return last("WORKDIR");
    }

    String user() {
        return last("USER");
    }

    String stopSignal() {
        return last("STOPSIGNAL");
    }

    List<Integer> exposedPorts() {
        return all("EXPOSE").stream()
                .flatMap(a -> Arrays.stream(a.split("\\s+")))
                .map(p -> Integer.parseInt(p.replace("/tcp", "")))
                .toList();
    }

    private static final Pattern ENV_PAIR = Pattern.compile("([A-Za-z_][A-Za-z0-9_]*)=(\\S*)");

    Map<String, String> env() {
        Map<String, String> env = new LinkedHashMap<>();
        for (String args : all("ENV")) {
            Matcher m = ENV_PAIR.matcher(args);
            int end = 0;
            while (m.find()) {
                if (!args.substring(end, m.start()).isBlank()) {
                    throw new AssertionError("ENV form not understood: " + args);
                }
                env.put(m.group(1), m.group(2));
                end = m.end();
            }
            if (!args.substring(end).isBlank()) {
                throw new AssertionError("ENV form not understood: " + args);
            }
        }
        return env;
    }

    List<Copy> copies() {
        List<Copy> copies = new ArrayList<>();
        for (String args : all("COPY")) {
            List<String> words =
                    Arrays.stream(args.split("\\s+")).filter(w -> !w.startsWith("--")).toList();
            copies.add(
                    new Copy(
                            List.copyOf(words.subList(0, words.size() - 1)),
                            words.get(words.size() - 1)));
        }
        return copies;
    }

    List<String> entrypoint() {
        return execForm("ENTRYPOINT", last("ENTRYPOINT"));
    }

    List<String> cmd() {
        return execForm("CMD", last("CMD"));
    }

    Healthcheck healthcheck() {
        String args = last("HEALTHCHECK");
        int cmd = args.indexOf("CMD ");
        if (cmd < 0) {
            throw new AssertionError("HEALTHCHECK without CMD: " + args);
        }
        Map<String, String> options = new LinkedHashMap<>();
        for (String option : args.substring(0, cmd).trim().split("\\s+")) {
            if (!option.isEmpty()) {
                String[] kv = option.replaceFirst("^--", "").split("=", 2);
                options.put(kv[0], kv[1]);
            }
        }
        return new Healthcheck(options, execForm("HEALTHCHECK CMD", args.substring(cmd + 4)));
    }

    /** A JSON array of strings (JSON is YAML); shell form fails: signals would go to the shell. */
    private static List<String> execForm(String what, String args) {
        if (!args.startsWith("[")) {
            throw new AssertionError(what + " is not in exec form: " + args);
        }
        List<?> parsed = new Yaml().load(args);
        return parsed.stream().map(o -> (String) o).toList();
    }

    private static final Pattern GO_DURATION = Pattern.compile("(\\d+)(ms|s|m|h)");

    /** Docker's and Compose's durations ("5s", "1m30s"). */
    static Duration goDuration(String text) {
        Matcher m = GO_DURATION.matcher(text.trim());
        Duration d = Duration.ZERO;
        int end = 0;
        while (m.find() && m.start() == end) {
            long n = Long.parseLong(m.group(1));
            d =
                    d.plus(
                            switch (m.group(2)) {
                                case "ms" -> Duration.ofMillis(n);
                                case "s" -> Duration.ofSeconds(n);
                                case "m" -> Duration.ofMinutes(n);
                                default -> Duration.ofHours(n);
                            });
            end = m.end();
        }
        if (end == 0 || end != text.trim().length()) {
            throw new AssertionError("not a duration: " + text);
        }
        return d;
    }
}
