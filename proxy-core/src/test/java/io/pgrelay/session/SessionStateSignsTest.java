package io.pgrelay.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.pgrelay.protocol.CStrings;
import io.pgrelay.protocol.Messages;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class SessionStateSignsTest {

    @Test
    void textThatHidesAChangeBehindASelectTagIsNoticed() {
        for (String sql :
                new String[] {
                    "select pg_advisory_lock(42)",
                    "SELECT PG_TRY_ADVISORY_LOCK_SHARED(1)",
                    "select set_config('search_path', 'a, b', false)",
                    "SELECT Set_Config('x.y', '1', false)",
                    "select * into temp t from x",
                    "create temporary table t as select 1",
                    "select 1 from pg_temp.t",
                }) {
            assertTrue(mentions(sql), sql);
        }
        for (String sql :
                new String[] {
                    "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
                    "select setconfig()",
                    "insert into t values (1)",
                    "",
                }) {
            assertFalse(mentions(sql), sql);
        }
    }

    @Test
    void eachSignNamesThePartsToRead() {
        assertEquals(SessionCheck.LOCKS, parts("select pg_advisory_lock(1)"));
        assertEquals(SessionCheck.SETTINGS, parts("select set_config('a.b', '1', false)"));
        assertEquals(SessionCheck.TEMP, parts("create temp table t as select 1"));
        assertEquals(
                SessionCheck.LOCKS | SessionCheck.TEMP,
                parts("select pg_advisory_lock(1) from temp_t"));
        assertEquals(SessionCheck.SETTINGS, tagParts("SET"));
        assertEquals(SessionCheck.SETTINGS, tagParts("RESET"));
        assertEquals(SessionCheck.TEMP, tagParts("CREATE TABLE"));
        assertEquals(SessionCheck.TEMP, tagParts("DROP VIEW"));
        assertEquals(SessionCheck.LISTEN, tagParts("UNLISTEN"));
        assertEquals(SessionCheck.CURSORS, tagParts("DECLARE CURSOR"));
        assertEquals(SessionCheck.CURSORS, tagParts("CLOSE CURSOR ALL"));
        assertEquals(SessionCheck.PREPARED, tagParts("DEALLOCATE ALL"));
        assertEquals(SessionCheck.ALL, tagParts("DISCARD TEMP"));
    }

    private static int parts(String sql) {
        ByteBuf buf = Unpooled.copiedBuffer(sql, StandardCharsets.UTF_8);
        try {
            return SessionState.signs(buf, 0, buf.writerIndex()).parts()
                    | (SessionState.signs(buf, 0, buf.writerIndex()).settingsUnknown()
                            ? SessionCheck.SETTINGS
                            : 0);
        } finally {
            buf.release();
        }
    }

    private static int tagParts(String tag) {
        ByteBuf buf = commandComplete(tag);
        try {
            return SessionState.changes(buf, 0);
        } finally {
            buf.release();
        }
    }

    @Test
    void theScanIsBounded() {
        String far = "x".repeat(SessionState.SCAN_LIMIT) + " pg_advisory_lock(1)";
        assertFalse(mentions(far));
    }

    @Test
    void commandTagsThatMayChangeTheSession() {
        for (String tag :
                new String[] {
                    "SET",
                    "RESET",
                    "LISTEN",
                    "UNLISTEN",
                    "PREPARE",
                    "CREATE TABLE",
                    "CREATE VIEW",
                    "CLOSE CURSOR",
                    "CLOSE CURSOR ALL",
                    "DECLARE CURSOR",
                    "DEALLOCATE",
                    "DEALLOCATE ALL",
                    "DISCARD ALL",
                    "DISCARD TEMP",
                    "DROP TABLE",
                }) {
            assertTrue(changes(tag), tag);
        }
        for (String tag :
                new String[] {
                    "SELECT 1",
                    "SELECT 0",
                    "INSERT 0 1",
                    "UPDATE 3",
                    "DELETE 0",
                    "COMMIT",
                    "ROLLBACK",
                    "BEGIN",
                    "COPY 5",
                    "FETCH 1",
                    "DO",
                    "SETX",
                    "",
                }) {
            assertFalse(changes(tag), tag);
        }
    }

    @Test
    void aCheckIsDueAfterAHintOrATagUntilItIsSent() {
        SessionState state = new SessionState();
        assertFalse(state.checkDue());
        ByteBuf select = commandComplete("SELECT 1");
        ByteBuf set = commandComplete("SET");
        state.commandComplete(select, 0);
        assertFalse(state.checkDue());
        state.commandComplete(set, 0);
        select.release();
        set.release();
        assertTrue(state.checkDue());
        state.checkSent();
        assertFalse(state.checkDue());
        state.hint(SessionCheck.LOCKS);
        assertTrue(state.checkDue());
        assertEquals(SessionCheck.LOCKS, state.checkSent().parts());
    }

    @Test
    void pinsAreLabelledInOrder() {
        int pins =
                SessionState.bit(SessionState.Pin.LISTEN) | SessionState.bit(SessionState.Pin.TEMP);
        assertEquals("temp,listen", SessionState.label(pins));
        assertEquals("", SessionState.label(0));
        SessionState state = new SessionState();
        assertEquals(0, state.checked(pins));
        assertTrue(state.isPinned());
        assertEquals(pins, state.checked(0));
        assertFalse(state.isPinned());
    }

    private static boolean mentions(String sql) {
        ByteBuf buf = Unpooled.copiedBuffer(sql, StandardCharsets.UTF_8);
        try {
            return SessionState.signs(buf, 0, buf.writerIndex()).parts() != 0
                    || SessionState.signs(buf, 0, buf.writerIndex()).settingsUnknown();
        } finally {
            buf.release();
        }
    }

    private static boolean changes(String tag) {
        ByteBuf buf = commandComplete(tag);
        try {
            return SessionState.changes(buf, 0) != 0;
        } finally {
            buf.release();
        }
    }

    static ByteBuf commandComplete(String tag) {
        ByteBuf buf = Unpooled.buffer();
        buf.writeByte(Messages.COMMAND_COMPLETE).writeInt(4 + CStrings.size(tag));
        CStrings.write(buf, tag);
        return buf;
    }
}
