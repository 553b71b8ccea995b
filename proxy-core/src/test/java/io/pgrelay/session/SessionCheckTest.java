package io.pgrelay.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.pgrelay.protocol.Messages;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SessionCheckTest {

    @Test
    void countsBecomePinsAndSessionSettingsAreKept() {
        SessionCheck check = new SessionCheck(SessionCheck.ALL, true);
        row(check, null, "1,0,2,0,0,0");
        row(check, "search_path", "a, b");
        row(check, "DateStyle", "ISO, MDY");
        SessionCheck.Result result = check.result();
        assertEquals(
                SessionState.bit(SessionState.Pin.TEMP)
                        | SessionState.bit(SessionState.Pin.ADVISORY_LOCK),
                result.pins());
        assertEquals(Map.of("search_path", "a, b", "DateStyle", "ISO, MDY"), result.settings());
        // Every reason but UNKNOWN was read.
        assertEquals(SessionState.bit(SessionState.Pin.UNKNOWN) - 1, result.pinsRead());
    }

    @Test
    void partsNotReadKeepTheirPins() {
        SessionCheck check = new SessionCheck(SessionCheck.LISTEN, true);
        row(check, null, "-,1,-,-,-,-");
        SessionCheck.Result result = check.result();
        assertEquals(SessionState.bit(SessionState.Pin.LISTEN), result.pins());
        assertEquals(SessionState.bit(SessionState.Pin.LISTEN), result.pinsRead());
        assertNull(result.settings(), "settings were not read");
    }

    @Test
    void theQueryReadsOnlyWhatItIsAskedFor() {
        String listen =
                SessionCheck.query("app", new SessionState.Check(SessionCheck.LISTEN, null));
        assertTrue(listen.contains("pg_listening_channels"), listen);
        assertFalse(listen.contains("pg_locks") || listen.contains("pg_settings"), listen);
        String settings =
                SessionCheck.query("it's", new SessionState.Check(SessionCheck.SETTINGS, null));
        assertTrue(settings.contains("pg_settings") && settings.contains("'it''s'"), settings);
        assertFalse(settings.contains("pg_class"), settings);
        String named =
                SessionCheck.query(
                        "app",
                        new SessionState.Check(
                                SessionCheck.SETTINGS, java.util.Set.of("search_path")));
        assertTrue(named.contains("(VALUES ('search_path'))"), named);
        assertFalse(named.contains("pg_settings"), named);
    }

    @Test
    void aSettingPgrelayCannotReplayPins() {
        SessionCheck check = new SessionCheck(SessionCheck.ALL, true);
        row(check, null, "0,0,0,0,0,0");
        row(check, "session_authorization", "someone");
        assertEquals(SessionState.bit(SessionState.Pin.SETTING), check.result().pins());
    }

    @Test
    void anotherRolePins() {
        SessionCheck check = new SessionCheck(SessionCheck.ALL, true);
        row(check, null, "0,0,0,0,0,1");
        assertEquals(SessionState.bit(SessionState.Pin.SETTING), check.result().pins());
    }

    @Test
    void anIncompleteOrFailedAnswerIsNoAnswer() {
        SessionCheck noCounts = new SessionCheck(SessionCheck.ALL, true);
        row(noCounts, "search_path", "x");
        assertNull(noCounts.result());

        SessionCheck failed = new SessionCheck(SessionCheck.ALL, true);
        row(failed, null, "0,0,0,0,0,0");
        failed.failed();
        assertNull(failed.result());

        SessionCheck malformed = new SessionCheck(SessionCheck.ALL, true);
        row(malformed, null, "0,0");
        assertNull(malformed.result());
    }

    private static void row(SessionCheck check, String name, String value) {
        ByteBuf buf = Unpooled.buffer();
        buf.writeByte(Messages.DATA_ROW).writeInt(0).writeShort(2);
        for (String v : new String[] {name, value}) {
            if (v == null) {
                buf.writeInt(-1);
            } else {
                byte[] bytes = v.getBytes(StandardCharsets.UTF_8);
                buf.writeInt(bytes.length).writeBytes(bytes);
            }
        }
        buf.setInt(1, buf.writerIndex() - 1);
        try {
            check.row(buf);
        } finally {
            buf.release();
        }
    }
}
