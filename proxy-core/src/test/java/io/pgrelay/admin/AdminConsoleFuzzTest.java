package io.pgrelay.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.testkit.QuietLogs;
import io.pgrelay.testkit.TrackingAllocator;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;

/**
 * The admin console against what a console client sends: the statement parser on its own, and whole
 * sessions of arbitrary frontend frames (with control commands that finish later, so frames queue
 * up). Statements fail only with an AdminException; a session never throws, answers only in
 * well-formed messages, never reports an internal error for a statement the parser accepted, and
 * releases every buffer.
 */
class AdminConsoleFuzzTest {

    static {
        QuietLogs.pgrelay();
    }

    private static final String[] VERBS = {
        "PAUSE",
        "RESUME",
        "RECONNECT",
        "KILL",
        "KILL_CLIENT",
        "DISABLE",
        "ENABLE",
        "RELOAD",
        "SHUTDOWN",
        "WAIT_CLOSE",
        "SET"
    };
    private static final byte[] FRAME_TYPES =
            "QPBDECSHX".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    @FuzzTest
    @DictionaryEntries({
        "SHOW",
        "POOLS",
        "STATS",
        "HELP",
        "SET",
        " = ",
        " TO ",
        "PAUSE",
        "RESUME",
        "RECONNECT",
        "KILL",
        "KILL_CLIENT",
        "DISABLE",
        "ENABLE",
        "RELOAD",
        "SHUTDOWN",
        "WAIT_FOR_CLIENTS",
        "WAIT_CLOSE",
        "SUSPEND",
        "\"",
        "'",
        ";"
    })
    void statements(FuzzedDataProvider data) {
        for (String statement : AdminCommand.split(data.consumeRemainingAsString())) {
            AdminCommand command;
            try {
                command = AdminCommand.parse(statement);
            } catch (AdminException e) {
                assertNotNull(e.sqlState());
                continue;
            }
            checkRunnable(command);
        }
    }

    /** What AdminSession does with a parsed command must not fail for want of checking here. */
    private static void checkRunnable(AdminCommand c) {
        String arg = c.argument();
        switch (c.verb()) {
            case SHOW -> {
                assertEquals(arg.toLowerCase(Locale.ROOT), arg);
                assertTrue(arg.equals(ShowTables.HELP) || ShowTables.table(arg) != null, arg);
            }
            case SET -> {
                assertTrue(!arg.isEmpty());
                assertNotNull(c.value());
            }
            case KILL_CLIENT -> assertTrue(Long.parseLong(arg) >= 0, arg);
            case SHUTDOWN -> {
                if (arg != null) {
                    assertNotEquals(
                            AdminControl.ShutdownMode.IMMEDIATE,
                            AdminControl.ShutdownMode.valueOf(arg));
                }
            }
            case DISABLE, ENABLE -> assertNotNull(arg);
            case RELOAD -> assertNull(arg);
            default -> {}
        }
    }

    @FuzzTest
    @DictionaryEntries({
        "SHOW POOLS",
        "SHOW HELP",
        "SHOW CLIENTS",
        "PAUSE",
        "RESUME",
        "KILL_CLIENT 7",
        "WAIT_CLOSE",
        "SET a = 'b'",
        "RELOAD",
        "SHUTDOWN",
        "\u0000",
        ";"
    })
    void session(FuzzedDataProvider data) {
        TrackingAllocator alloc = new TrackingAllocator();
        ConsoleHarness admin = new ConsoleHarness(data.consumeBoolean(), alloc);
        List<CompletableFuture<String>> unfinished = new ArrayList<>();
        boolean failedControl = false;
        for (int i = 0; i < 16 && data.remainingBytes() > 0 && !admin.session.wantsClose(); i++) {
            switch (data.consumeInt(0, 7)) {
                case 0 -> {
                    // The next such control command finishes later.
                    CompletableFuture<String> f = new CompletableFuture<>();
                    admin.control.answers.put(data.pickValue(VERBS), f);
                    unfinished.add(f);
                }
                case 1 -> {
                    if (!unfinished.isEmpty()) {
                        CompletableFuture<String> f = unfinished.remove(0);
                        switch (data.consumeInt(0, 2)) {
                            case 0 -> f.complete(null);
                            case 1 -> f.complete("no such database");
                            default -> {
                                f.completeExceptionally(new IllegalStateException("boom"));
                                failedControl = true;
                            }
                        }
                        admin.runScheduled();
                    }
                }
                default -> {
                    byte type =
                            data.consumeBoolean()
                                    ? data.pickValue(FRAME_TYPES)
                                    : data.consumeByte();
                    byte[] body = data.consumeBytes(data.consumeInt(0, 128));
                    admin.send(
                            ConsoleHarness.frame(
                                    (char) (type & 0xff),
                                    alloc.buffer(body.length).writeBytes(body)));
                }
            }
            for (ConsoleHarness.Msg m : admin.replies()) {
                if (m.type() == 'E' && !failedControl) {
                    assertNotEquals(
                            SqlState.INTERNAL_ERROR, m.sqlState(), "internal error: " + m.fields());
                }
            }
        }
        admin.session.close();
        admin.runScheduled();
        admin.replies();
        admin.assertInputsReleased();
        alloc.assertAllReleased();
    }
}
