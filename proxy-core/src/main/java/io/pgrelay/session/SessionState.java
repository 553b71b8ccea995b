package io.pgrelay.session;

import io.netty.buffer.ByteBuf;
import io.netty.util.concurrent.FastThreadLocal;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What one transaction-mode client may have changed in its server session, and what it holds that
 * keeps it on its server connection ("pinned").
 *
 * <p>Nothing here parses SQL. The server's CommandComplete tags say when a statement may have
 * changed the session (SET, RESET, CREATE, LISTEN, DECLARE CURSOR, PREPARE, DISCARD, DROP, ...);
 * the few changes that hide behind a plain {@code SELECT n} tag (set_config, advisory locks, SELECT
 * INTO TEMP, CREATE TEMP TABLE AS) are caught by a bounded scan of the statement text for a few
 * words. Either makes the transaction <em>dirty</em>: when it ends, the server is asked once what
 * the session holds ({@link SessionCheck}), and its answer, not a guess, decides. A false alarm
 * costs one query off the client's path; a client that never does any of this pays a byte compare
 * per CommandComplete.
 */
public final class SessionState {

    /** Why a client keeps its server connection. */
    public enum Pin {
        TEMP("temp"),
        LISTEN("listen"),
        ADVISORY_LOCK("advisory_lock"),
        HOLD_CURSOR("hold_cursor"),
        SQL_PREPARE("sql_prepare"),
        /** A setting pgrelay cannot replay (SET SESSION AUTHORIZATION, ...). */
        SETTING("setting"),
        /** The server could not be asked (an error, say a statement_timeout of 1 ms): keep it. */
        UNKNOWN("unknown");

        public final String label;

        Pin(String label) {
            this.label = label;
        }

        int bit() {
            return 1 << ordinal();
        }
    }

    /** Settings remembered by name per transaction; beyond it the check reads them all. */
    static final int MAX_SET_NAMES = 32;

    /** Statement text scanned for the words below, per message; the rest is not looked at. */
    static final int SCAN_LIMIT = 8192;

    /** Lower case; matched case-insensitively anywhere in the text (identifiers included). */
    private static final byte[][] WORDS = {
        "advisory".getBytes(), "set_config".getBytes(), "temp".getBytes()
    };

    /** What each word may have changed: the parts of the session the check must read. */
    private static final int[] WORD_PARTS = {
        SessionCheck.LOCKS, SessionCheck.SETTINGS, SessionCheck.TEMP
    };

    /** The parts of the session this transaction may have changed (SessionCheck bits). */
    private int dirty;

    /** Settings changed in a way not read from a simple SET's text: the check reads them all. */
    private boolean settingsUnknown;

    /** Settings simple SETs of this transaction changed for the session (read from the text). */
    private Set<String> setNames;

    /** SET statements read from their text (for the session or not), and SET tags seen. */
    private int setsRead;

    private int setTags;

    /** What a statement text says about the session, read once (a named statement keeps it). */
    public record Signs(
            int parts, boolean settingsUnknown, boolean isSet, String setName, boolean resets) {
        static final Signs NONE = new Signs(0, false, false, null, false);
    }

    /**
     * What a check is to read: {@code parts}, and of the settings only {@code names} if not null.
     */
    public record Check(int parts, Set<String> names) {}

    /**
     * A RESET or DISCARD ALL in this transaction: settings may be back at the server's defaults.
     */
    private boolean resets;

    /** Read by the console from other threads. */
    private volatile int pins;

    /**
     * What statement text (a Query's, or a Parse's) says about the session: the parts it may change
     * behind a {@code SELECT n} tag, by the words it mentions (pg_advisory_lock and friends: locks;
     * set_config: settings, unless every call is local; INTO TEMP, CREATE TEMP TABLE AS: temporary
     * objects), and, for a SET statement, which setting it changes for the session. Reads at most
     * {@link #SCAN_LIMIT} bytes of [from, to).
     */
    public static Signs signs(ByteBuf buf, int from, int to) {
        int length = Math.min(to - from, SCAN_LIMIT);
        if (length <= 0) {
            return Signs.NONE;
        }
        // One bulk copy into a per-thread array, then a plain array loop: reading a pooled direct
        // buffer byte by byte costs a bounds check and an indirection each (3x slower measured).
        byte[] text = SCRATCH.get();
        buf.getBytes(from, text, 0, length);
        return signs(text, length, to - from > SCAN_LIMIT);
    }

    /** The same for the first {@code length} bytes of {@code text} ({@code cut}: there is more). */
    static Signs signs(byte[] text, int length, boolean cut) {
        for (int i = 0; i < length; i++) {
            if (text[i] == 0) {
                length = i; // the query string's terminator; what follows is not SQL
                cut = false;
                break;
            }
        }
        int parts = hiddenChanges(text, length);
        boolean unknown = false;
        if ((parts & SessionCheck.SETTINGS) != 0) {
            if (SetStatements.onlyLocalSetConfig(text, length) && !cut) {
                parts &= ~SessionCheck.SETTINGS;
            } else {
                unknown = true;
            }
        }
        if (!SetStatements.startsWithSet(text, length)) {
            return parts == 0 && !unknown
                    ? Signs.NONE
                    : new Signs(parts, unknown, false, null, false);
        }
        String name = cut ? null : SetStatements.setName(text, length);
        if (SetStatements.TO_DEFAULT.equals(name)) {
            return new Signs(parts, true, true, null, true);
        }
        return new Signs(parts, unknown || name == null, true, name, false);
    }

    private static final FastThreadLocal<byte[]> SCRATCH =
            new FastThreadLocal<>() {
                @Override
                protected byte[] initialValue() {
                    return new byte[SCAN_LIMIT];
                }
            };

    /** The same for the first {@code length} bytes of {@code text}. */
    static int hiddenChanges(byte[] text, int length) {
        int parts = 0;
        for (int i = 0; i < length; i++) {
            int b = lower(text[i]);
            if (b == 'a' || b == 's' || b == 't') {
                for (int w = 0; w < WORDS.length; w++) {
                    if (WORDS[w][0] == b && matches(text, i, length, WORDS[w])) {
                        parts |= WORD_PARTS[w];
                    }
                }
            }
        }
        return parts;
    }

    private static boolean matches(byte[] text, int at, int end, byte[] word) {
        if (at + word.length > end) {
            return false;
        }
        for (int k = 1; k < word.length; k++) {
            if (lower(text[at + k]) != word[k]) {
                return false;
            }
        }
        return true;
    }

    /** ASCII letters in lower case; every other byte as it is ('_' must stay '_'). */
    private static int lower(byte b) {
        return b >= 'A' && b <= 'Z' ? b | 0x20 : b;
    }

    /**
     * The parts of the session the statement a CommandComplete reports (at {@code index}) may have
     * changed; 0 for none. {@code SELECT n}, INSERT, UPDATE, DELETE, FETCH, COMMIT and the like
     * change none; their first byte decides without a compare.
     */
    public static int changes(ByteBuf buf, int index) {
        int tag = index + MessageFields.HEADER;
        if (tag >= Messages.end(buf, index)) {
            return 0;
        }
        return switch (buf.getByte(tag)) {
            case 'S' -> MessageFields.commandTagIs(buf, index, "SET") ? SessionCheck.SETTINGS : 0;
            case 'R' -> MessageFields.commandTagIs(buf, index, "RESET") ? SessionCheck.SETTINGS : 0;
            case 'L' -> MessageFields.commandTagIs(buf, index, "LISTEN") ? SessionCheck.LISTEN : 0;
            case 'U' ->
                    MessageFields.commandTagIs(buf, index, "UNLISTEN") ? SessionCheck.LISTEN : 0;
            case 'P' ->
                    MessageFields.commandTagIs(buf, index, "PREPARE") ? SessionCheck.PREPARED : 0;
            case 'C' ->
                    startsWith(buf, tag, "CREATE ")
                            ? SessionCheck.TEMP
                            : startsWith(buf, tag, "CLOSE ") ? SessionCheck.CURSORS : 0;
            case 'D' -> {
                if (startsWith(buf, tag, "DECLARE ")) {
                    yield SessionCheck.CURSORS;
                } else if (startsWith(buf, tag, "DEALLOCATE")) {
                    yield SessionCheck.PREPARED;
                } else if (startsWith(buf, tag, "DISCARD")) {
                    yield SessionCheck.ALL;
                } else {
                    yield startsWith(buf, tag, "DROP ") ? SessionCheck.TEMP : 0;
                }
            }
            default -> 0;
        };
    }

    private static boolean startsWith(ByteBuf buf, int at, String prefix) {
        if (at + prefix.length() > buf.writerIndex()) {
            return false;
        }
        for (int k = 0; k < prefix.length(); k++) {
            if (buf.getByte(at + k) != prefix.charAt(k)) {
                return false;
            }
        }
        return true;
    }

    /** A request in this transaction may have changed these parts (SessionCheck bits). */
    public void hint(int parts) {
        dirty |= parts;
        settingsUnknown |= (parts & SessionCheck.SETTINGS) != 0;
    }

    /** A request with this text (its {@link #signs}) went to the server. */
    public void sent(Signs signs) {
        if (signs == Signs.NONE) {
            return;
        }
        hint(signs.parts() | (signs.settingsUnknown() ? SessionCheck.SETTINGS : 0));
        resets |= signs.resets();
        if (signs.isSet() && signs.setName() != null) {
            setsRead++;
            if (!signs.setName().isEmpty()) {
                if (setNames == null) {
                    setNames = new HashSet<>(2);
                }
                if (setNames.size() < MAX_SET_NAMES) {
                    setNames.add(signs.setName());
                } else {
                    // A transaction of many SETs (a hostile one: millions) is read in one go
                    // rather than remembered name by name.
                    settingsUnknown = true;
                }
            }
        }
    }

    /** A CommandComplete went by; at {@code index} of {@code buf}. */
    public void commandComplete(ByteBuf buf, int index) {
        int parts = changes(buf, index);
        if (parts == SessionCheck.SETTINGS && MessageFields.commandTagIs(buf, index, "SET")) {
            setTags++; // read from its text, or not: the count says (parts())
        } else if (parts != 0) {
            hint(parts);
            resets |=
                    MessageFields.commandTagIs(buf, index, "RESET")
                            || MessageFields.commandTagIs(buf, index, "DISCARD ALL");
        }
    }

    /**
     * Whether the transaction's ReadyForQuery must wait for the check: a RESET put settings back to
     * the server connection's login values, and the client's own startup values must be back in
     * place before it can send its next statement (it would run with the wrong ones otherwise).
     */
    public boolean holdsReadyForQuery() {
        return resets;
    }

    /** Whether the session must be checked once the transaction has ended. */
    public boolean checkDue() {
        return parts() != 0;
    }

    /**
     * The parts to read. Settings: all of them if anything changed them that was not read from a
     * simple SET (RESET, set_config, a SET among several statements: more SET tags than SETs read),
     * else only those the SETs named; none if they were all SET LOCAL and the like.
     */
    private int parts() {
        boolean allKnown = !settingsUnknown && setTags <= setsRead;
        boolean any = !allKnown || (setNames != null && !setNames.isEmpty());
        return (dirty & ~SessionCheck.SETTINGS) | (any ? SessionCheck.SETTINGS : 0);
    }

    /** The check is on its way, reading what it returns: what the transaction did is in it. */
    public Check checkSent() {
        int parts = parts();
        Set<String> names =
                (parts & SessionCheck.SETTINGS) != 0 && !settingsUnknown && setTags <= setsRead
                        ? Set.copyOf(setNames)
                        : null;
        dirty = 0;
        resets = false;
        settingsUnknown = false;
        setNames = null;
        setsRead = 0;
        setTags = 0;
        return new Check(parts, names);
    }

    /** The client's pins now (after a check, or {@link Pin#UNKNOWN}); returns those it replaced. */
    public int checked(int newPins) {
        int old = pins;
        pins = newPins;
        return old;
    }

    public boolean isPinned() {
        return pins != 0;
    }

    public int pins() {
        return pins;
    }

    /** The pins of {@code bits}, comma-separated ("temp,listen"); empty when none. */
    public static String label(int bits) {
        if (bits == 0) {
            return "";
        }
        List<String> labels = new ArrayList<>(2);
        for (Pin pin : Pin.values()) {
            if ((bits & pin.bit()) != 0) {
                labels.add(pin.label);
            }
        }
        return String.join(",", labels);
    }

    /** The bit of {@code pin}, for building a pin set. */
    public static int bit(Pin pin) {
        return pin.bit();
    }
}
