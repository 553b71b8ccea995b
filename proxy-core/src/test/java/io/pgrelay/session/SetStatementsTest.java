package io.pgrelay.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The SET statements read from their text, and what a transaction's check then reads. */
class SetStatementsTest {

    @Test
    void simpleSetsNameTheirSetting() {
        assertEquals("search_path", name("SET search_path TO a, b"));
        assertEquals("search_path", name("  set Search_Path = 'a'  ;  "));
        assertEquals("statement_timeout", name("SET SESSION statement_timeout=5000"));
        assertEquals("TimeZone", name("SET TIME ZONE 'UTC'"));
        assertEquals("TimeZone", name("set timezone to 'UTC'"));
        assertEquals("search_path", name("SET SCHEMA 'x'"));
        assertEquals("client_encoding", name("SET NAMES 'UTF8'"));
        assertEquals("app.tenant", name("SET app.tenant = '42'"));
    }

    @Test
    void manySetsInOneTransactionAreReadInOneGo() {
        SessionState state = new SessionState();
        for (int i = 0; i <= SessionState.MAX_SET_NAMES; i++) {
            state.sent(signs("SET app.s" + i + " = 1"));
            tag(state, "SET");
        }
        assertNull(state.checkSent().names(), "no name list beyond the bound");
    }

    @Test
    void setToDefaultIsAReset() {
        assertEquals(SetStatements.TO_DEFAULT, name("SET statement_timeout TO DEFAULT"));
        assertEquals(SetStatements.TO_DEFAULT, name("set session search_path = default;"));
        SessionState state = new SessionState();
        state.sent(signs("SET statement_timeout TO DEFAULT"));
        tag(state, "SET");
        assertTrue(state.holdsReadyForQuery(), "restored before the client goes on");
        assertNull(state.checkSent().names(), "every setting is read, as after RESET");
    }

    @Test
    void aQueryStringEndsAtItsTerminator() {
        SessionState state = new SessionState();
        state.sent(signs("SET LOCAL app.tenant = 42;\0"));
        tag(state, "SET");
        assertFalse(state.checkDue());
        state.sent(signs("SET search_path = x\0\0\0"));
        tag(state, "SET");
        assertEquals(Set.of("search_path"), state.checkSent().names());
    }

    @Test
    void whatEndsWithTheTransactionNamesNothing() {
        assertEquals("", name("SET LOCAL search_path TO x"));
        assertEquals("", name("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"));
        assertEquals("", name("SET CONSTRAINTS ALL DEFERRED"));
    }

    @Test
    void anythingElseIsNotRead() {
        for (String sql :
                new String[] {
                    "SET a = 1; SET b = 2",
                    "SET a = 'x;y'",
                    "SET a = 1 -- comment",
                    "SET /* c */ a = 1",
                    "SET \"search_path\" TO x",
                    "SET ROLE other",
                    "SET role = other",
                    "SET SESSION AUTHORIZATION other",
                    "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
                    "SET search_path",
                    "SET",
                }) {
            assertNull(name(sql), sql);
        }
    }

    @Test
    void localSetConfigCallsChangeNothingForTheSession() {
        assertTrue(local("select set_config('request.jwt', '{}', true)"));
        assertTrue(local("SELECT set_config($1, $2, true), set_config('a.b', NULL, true)"));
        assertFalse(local("select set_config('a.b', '1', false)"));
        assertFalse(local("select set_config('a.b', '1', true), set_config('c.d', '1', false)"));
        assertFalse(local("select set_config('a.b', x, true)"));
    }

    @Test
    void aTransactionsCheckReadsOnlyWhatItsSetsNamed() {
        SessionState state = new SessionState();
        state.sent(signs("SET search_path TO x"));
        tag(state, "SET");
        SessionState.Check check = state.checkSent();
        assertEquals(SessionCheck.SETTINGS, check.parts());
        assertEquals(Set.of("search_path"), check.names());

        state.sent(signs("SET LOCAL statement_timeout = 5"));
        tag(state, "SET");
        assertFalse(state.checkDue(), "a SET LOCAL leaves nothing to check");

        state.sent(signs("select set_config('request.claims', '{}', true)"));
        assertFalse(state.checkDue(), "a local set_config leaves nothing to check");

        // Two SETs in one Query: more SET tags than SETs read, so every setting is read.
        state.sent(signs("SET a.b = 1; SET c.d = 2"));
        tag(state, "SET");
        tag(state, "SET");
        assertNull(state.checkSent().names());

        state.sent(signs("SET search_path TO x"));
        tag(state, "SET");
        tag(state, "RESET");
        assertNull(state.checkSent().names(), "a RESET: every setting");
    }

    private static String name(String sql) {
        byte[] bytes = sql.getBytes(StandardCharsets.UTF_8);
        return SetStatements.setName(bytes, bytes.length);
    }

    private static boolean local(String sql) {
        byte[] bytes = sql.getBytes(StandardCharsets.UTF_8);
        return SetStatements.onlyLocalSetConfig(bytes, bytes.length);
    }

    private static SessionState.Signs signs(String sql) {
        ByteBuf buf = Unpooled.copiedBuffer(sql, StandardCharsets.UTF_8);
        try {
            return SessionState.signs(buf, 0, buf.writerIndex());
        } finally {
            buf.release();
        }
    }

    private static void tag(SessionState state, String tag) {
        ByteBuf buf = SessionStateSignsTest.commandComplete(tag);
        try {
            state.commandComplete(buf, 0);
        } finally {
            buf.release();
        }
    }
}
