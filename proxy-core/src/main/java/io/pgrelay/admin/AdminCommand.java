package io.pgrelay.admin;

import io.pgrelay.protocol.SqlState;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One parsed console statement: {@code VERB [argument]}, or {@code SET key = value}.
 *
 * <p>The grammar is PgBouncer's (src/admin.c): a command word, at most one argument (a bare word or
 * a "quoted identifier"), an optional trailing ';'; SET takes {@code key = value} or {@code key TO
 * value} where the value is a bare word, a "quoted identifier" or a 'string' with '' escapes.
 * Command words are case-insensitive; arguments keep their case. Bare words are more lenient than
 * PgBouncer's {@code [0-9a-z_]+} (database names with '-' or '.' need no quotes). Unlike PgBouncer,
 * a query may hold several statements separated by ';'.
 *
 * @param verb what to do
 * @param argument SHOW: the subject, lower-cased; SET: the key; others: the database, client id or
 *     shutdown mode, or null when omitted
 * @param value SET only: the unquoted value
 */
record AdminCommand(Verb verb, String argument, String value) {

    enum Verb {
        SHOW,
        SET,
        PAUSE,
        RESUME,
        RECONNECT,
        KILL,
        KILL_CLIENT,
        DISABLE,
        ENABLE,
        RELOAD,
        SHUTDOWN,
        WAIT_CLOSE
    }

    /**
     * Splits a query string at the ';' that are outside quotes. Statements are trimmed and empty
     * ones dropped, so an empty list means an empty query.
     */
    static List<String> split(String query) {
        List<String> statements = new ArrayList<>();
        int start = 0;
        char quote = 0;
        for (int i = 0; i < query.length(); i++) {
            char c = query.charAt(i);
            if (quote != 0) {
                if (c == quote) {
                    quote = 0; // a doubled quote closes and reopens: same result
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == ';') {
                addTrimmed(statements, query.substring(start, i));
                start = i + 1;
            }
        }
        addTrimmed(statements, query.substring(start));
        return statements;
    }

    private static void addTrimmed(List<String> statements, String s) {
        String t = s.strip();
        if (!t.isEmpty()) {
            statements.add(t);
        }
    }

    /** Parses one statement (no ';' inside, as from {@link #split}). */
    static AdminCommand parse(String statement) {
        List<Token> tokens = tokenize(statement);
        if (tokens.isEmpty() || tokens.get(0).kind != Kind.WORD) {
            throw AdminException.invalidCommand(statement);
        }
        String word = tokens.get(0).text.toUpperCase(Locale.ROOT);
        if (word.equals("SUSPEND")) {
            // SUSPEND exists for PgBouncer's online restart (passing sockets), which pgrelay does
            // not do.
            throw new AdminException(
                    SqlState.FEATURE_NOT_SUPPORTED, "SUSPEND is not supported by pgrelay");
        }
        Verb verb;
        try {
            verb = Verb.valueOf(word);
        } catch (IllegalArgumentException e) {
            throw AdminException.invalidCommand(statement);
        }
        if (verb == Verb.SET) {
            return parseSet(statement, tokens);
        }
        if (tokens.size() > 2) {
            throw AdminException.invalidCommand(statement);
        }
        String arg = null;
        if (tokens.size() == 2) {
            Token t = tokens.get(1);
            if (t.kind != Kind.WORD && t.kind != Kind.IDENTIFIER) {
                throw AdminException.invalidCommand(statement);
            }
            arg = t.text;
        }
        return switch (verb) {
            case SHOW -> parseShow(statement, arg);
            case DISABLE, ENABLE -> {
                if (arg == null) {
                    throw new AdminException(AdminException.SYNTAX_ERROR, "a database is required");
                }
                yield new AdminCommand(verb, arg, null);
            }
            case KILL_CLIENT -> {
                // Not empty: KILL_CLIENT "" would reach Long.parseLong and fail as an internal
                // error.
                if (arg == null
                        || arg.isEmpty()
                        || !arg.chars().allMatch(Character::isDigit)
                        || arg.length() > 18) {
                    throw new AdminException(
                            AdminException.SYNTAX_ERROR, "invalid client id supplied: " + arg);
                }
                yield new AdminCommand(verb, arg, null);
            }
            case RELOAD -> {
                if (arg != null) {
                    throw AdminException.invalidCommand(statement);
                }
                yield new AdminCommand(verb, null, null);
            }
            case SHUTDOWN -> {
                if (arg != null) {
                    arg = arg.toUpperCase(Locale.ROOT);
                    if (!arg.equals("WAIT_FOR_CLIENTS") && !arg.equals("WAIT_FOR_SERVERS")) {
                        throw AdminException.invalidCommand(statement);
                    }
                }
                yield new AdminCommand(verb, arg, null);
            }
            default -> new AdminCommand(verb, arg, null);
        };
    }

    private static AdminCommand parseShow(String statement, String subject) {
        if (subject == null) {
            throw AdminException.invalidCommand(statement);
        }
        String s = subject.toLowerCase(Locale.ROOT);
        if (ShowTables.UNSUPPORTED.contains(s)) {
            throw new AdminException(
                    SqlState.FEATURE_NOT_SUPPORTED,
                    "SHOW " + s.toUpperCase(Locale.ROOT) + " is not supported by pgrelay");
        }
        if (!s.equals(ShowTables.HELP) && ShowTables.table(s) == null) {
            throw AdminException.invalidCommand(statement);
        }
        return new AdminCommand(Verb.SHOW, s, null);
    }

    private static AdminCommand parseSet(String statement, List<Token> tokens) {
        if (tokens.size() != 4) {
            throw AdminException.invalidCommand(statement);
        }
        Token key = tokens.get(1);
        Token op = tokens.get(2);
        Token value = tokens.get(3);
        boolean keyOk =
                (key.kind == Kind.WORD || key.kind == Kind.IDENTIFIER) && !key.text.isEmpty();
        boolean opOk =
                op.kind == Kind.EQUALS || (op.kind == Kind.WORD && op.text.equalsIgnoreCase("to"));
        if (!keyOk || !opOk || value.kind == Kind.EQUALS) {
            throw AdminException.invalidCommand(statement);
        }
        return new AdminCommand(Verb.SET, key.text, value.text);
    }

    private enum Kind {
        WORD,
        IDENTIFIER,
        STRING,
        EQUALS
    }

    private record Token(Kind kind, String text) {}

    private static List<Token> tokenize(String s) {
        List<Token> tokens = new ArrayList<>();
        int i = 0;
        int n = s.length();
        while (i < n) {
            char c = s.charAt(i);
            if (Character.isWhitespace(c)) {
                i++;
            } else if (c == '=') {
                tokens.add(new Token(Kind.EQUALS, "="));
                i++;
            } else if (c == '"' || c == '\'') {
                StringBuilder text = new StringBuilder();
                i++;
                while (true) {
                    if (i >= n) {
                        throw AdminException.invalidCommand(s); // unterminated quote
                    }
                    char q = s.charAt(i++);
                    if (q == c) {
                        if (i < n && s.charAt(i) == c) {
                            text.append(c); // doubled quote stands for itself
                            i++;
                        } else {
                            break;
                        }
                    } else {
                        text.append(q);
                    }
                }
                tokens.add(new Token(c == '"' ? Kind.IDENTIFIER : Kind.STRING, text.toString()));
            } else {
                int start = i;
                while (i < n
                        && !Character.isWhitespace(s.charAt(i))
                        && "=\"'".indexOf(s.charAt(i)) < 0) {
                    i++;
                }
                tokens.add(new Token(Kind.WORD, s.substring(start, i)));
            }
        }
        return tokens;
    }
}
