package io.pgrelay.testkit;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails a test class when Netty's leak detector reported a buffer that was never released. The
 * appender is wired in logback-test.xml; the extension is auto-registered for every test class
 * (junit-platform.properties) and runs with -Dio.netty.leakDetection.level=paranoid.
 */
public final class LeakReports extends AppenderBase<ILoggingEvent> implements AfterAllCallback {

    private static final List<String> REPORTS = new CopyOnWriteArrayList<>();

    @Override
    protected void append(ILoggingEvent event) {
        if (event.getFormattedMessage().contains("LEAK:")) {
            REPORTS.add(event.getFormattedMessage());
        }
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        // Leaks are reported when a leaked buffer has been collected and the detector next
        // tracks an allocation: collect, then allocate a few times.
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(50);
            for (int j = 0; j < 100; j++) {
                ByteBuf a = PooledByteBufAllocator.DEFAULT.directBuffer(16);
                ByteBuf b = UnpooledByteBufAllocator.DEFAULT.heapBuffer(16);
                a.release();
                b.release();
            }
        }
        if (!REPORTS.isEmpty()) {
            String first = REPORTS.get(0);
            int n = REPORTS.size();
            REPORTS.clear();
            throw new AssertionError(
                    n
                            + " Netty leak report(s) in "
                            + context.getDisplayName()
                            + "; first:\n"
                            + first);
        }
    }
}
