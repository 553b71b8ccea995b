package io.pgrelay.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.pgrelay.testkit.TrackingAllocator;

/**
 * ErrorResponse.decode on any body a server may send ('E' and 'N' share the layout). The only
 * failure allowed is a ProtocolException; what decodes must survive what pgrelay does with a
 * server's error: read it, downgrade its severity, encode it for the client.
 */
class ErrorResponseFuzzTest {

    @FuzzTest
    void decode(byte[] body) {
        ByteBuf frame =
                Unpooled.buffer(5 + body.length)
                        .writeByte(ErrorResponse.TYPE)
                        .writeInt(4 + body.length)
                        .writeBytes(body);
        ErrorResponse error;
        try {
            error = ErrorResponse.decode(frame);
        } catch (ProtocolException e) {
            return;
        } finally {
            frame.release();
        }
        assertNotNull(error.toString());
        error.isFatal();
        assertEquals(error.fields(), roundTrip(error).fields());
        ErrorResponse downgraded = error.withSeverity("ERROR");
        assertFalse(downgraded.isFatal());
        assertEquals(error.sqlState(), downgraded.sqlState());
        assertEquals(error.message(), downgraded.message());
        assertEquals(downgraded.fields(), roundTrip(downgraded).fields());
    }

    private static ErrorResponse roundTrip(ErrorResponse error) {
        TrackingAllocator alloc = new TrackingAllocator();
        ByteBuf encoded = error.encode(alloc);
        try {
            assertEquals(encoded.readableBytes() - 1, encoded.getInt(1), "length word");
            return ErrorResponse.decode(encoded);
        } finally {
            encoded.release();
            alloc.assertAllReleased();
        }
    }
}
