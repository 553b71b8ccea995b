package io.pgrelay.auth;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Users and their secrets from a PgBouncer auth_file ("userlist.txt"): one {@code "user" "secret"}
 * per line, further fields ignored; {@code ""} inside quotes is a literal quote; lines starting
 * with {@code ;} or {@code #} are comments. A user listed twice keeps the last secret, as PgBouncer
 * does.
 */
public final class UserList {

    private final Map<String, Secret> secrets;

    private UserList(Map<String, Secret> secrets) {
        this.secrets = Map.copyOf(secrets);
    }

    /** Reads the file as UTF-8. */
    public static UserList load(Path file) throws IOException {
        return parse(Files.readString(file), file.toString());
    }

    /**
     * @param sourceName names the text in error messages, usually the file path
     * @throws IllegalArgumentException naming the source and line of the first malformed line
     */
    public static UserList parse(String text, String sourceName) {
        Map<String, Secret> secrets = new HashMap<>();
        String[] lines = text.split("\r?\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line =
                    i == 0 && lines[0].startsWith("\uFEFF") ? lines[0].substring(1) : lines[i];
            int pos = skipBlanks(line, 0);
            if (pos == line.length() || line.charAt(pos) == ';' || line.charAt(pos) == '#') {
                continue;
            }
            StringBuilder user = new StringBuilder();
            StringBuilder secret = new StringBuilder();
            pos = readQuoted(line, pos, user);
            if (pos >= 0) {
                pos = readQuoted(line, skipBlanks(line, pos), secret);
            }
            // the message names the line but never shows it: it would put the secret in the log
            if (pos < 0) {
                throw new IllegalArgumentException(
                        sourceName
                                + ":"
                                + (i + 1)
                                + ": malformed auth file line (expected \"user\" \"secret\")");
            }
            if (user.length() == 0) {
                throw new IllegalArgumentException(
                        sourceName + ":" + (i + 1) + ": empty user name");
            }
            secrets.put(user.toString(), Secret.parse(secret.toString()));
        }
        return new UserList(secrets);
    }

    public Optional<Secret> secret(String user) {
        return Optional.ofNullable(secrets.get(user));
    }

    public Set<String> users() {
        return secrets.keySet();
    }

    @Override
    public String toString() {
        return "UserList[" + secrets.size() + " users]";
    }

    private static int skipBlanks(String line, int pos) {
        while (pos < line.length() && (line.charAt(pos) == ' ' || line.charAt(pos) == '\t')) {
            pos++;
        }
        return pos;
    }

    /**
     * Appends the quoted field at pos to out; returns the index after its closing quote, or -1 if
     * malformed.
     */
    private static int readQuoted(String line, int pos, StringBuilder out) {
        if (pos >= line.length() || line.charAt(pos) != '"') {
            return -1;
        }
        for (pos++; pos < line.length(); pos++) {
            char c = line.charAt(pos);
            if (c != '"') {
                out.append(c);
            } else if (pos + 1 < line.length() && line.charAt(pos + 1) == '"') {
                out.append('"');
                pos++;
            } else {
                return pos + 1;
            }
        }
        return -1;
    }
}
