package io.pgrelay.bench.harness;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/** Small file and text helpers for what the shell version did with tail, tr, cat and printf %q. */
final class Text {
    private Text() {}

    static void write(Path file, String text) {
        try {
            Files.writeString(file, text, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new HarnessException("cannot write " + file + ": " + e.getMessage());
        }
    }

    static void append(Path file, String text) {
        try {
            Files.writeString(
                    file,
                    text,
                    StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new HarnessException("cannot write " + file + ": " + e.getMessage());
        }
    }

    static String read(Path file) {
        try {
            return new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    static List<String> lines(Path file) {
        String text = read(file);
        if (text.isEmpty()) {
            return List.of();
        }
        String[] parts = text.split("\n", -1);
        int n = text.endsWith("\n") ? parts.length - 1 : parts.length;
        return List.of(parts).subList(0, n);
    }

    /** {@code $(tail -n N file)}: the last lines, newline-separated, no trailing newline. */
    static String tail(Path file, int n) {
        List<String> lines = lines(file);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - n), lines.size()));
    }

    /** {@code $(tail -n N file | tr '\n' ' ')}: every line followed by a space. */
    static String tailSpaced(Path file, int n) {
        List<String> lines = lines(file);
        StringBuilder sb = new StringBuilder();
        for (String line : lines.subList(Math.max(0, lines.size() - n), lines.size())) {
            sb.append(line).append(' ');
        }
        return sb.toString();
    }

    /** {@code tr '\n' ' '} on text that {@code $(...)} already cut the trailing newlines off. */
    static String spaced(String text) {
        return text.replace('\n', ' ');
    }

    /** {@code $(tr '\n' ' ' <<<"$text")}: the here-string's newline becomes a trailing space. */
    static String hereSpaced(String text) {
        return spaced(text) + " ";
    }

    /**
     * {@code printf '%q '} of each word: bash's backslash quoting, so the saved commands read
     * alike.
     */
    static String shellQuoted(List<String> words) {
        StringBuilder sb = new StringBuilder();
        for (String w : words) {
            sb.append(quote(w)).append(' ');
        }
        return sb.toString();
    }

    static String quote(String word) {
        if (word.isEmpty()) {
            return "''";
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < word.length(); i++) {
            char c = word.charAt(i);
            boolean special = " \t\n'\"\\|&;()<>!{}*[]?^$`,".indexOf(c) >= 0;
            if (i == 0 && (c == '~' || c == '#')) {
                special = true;
            }
            if (special) {
                sb.append('\\');
            }
            sb.append(c);
        }
        return sb.toString();
    }
}
