package io.pgrelay.testkit;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.util.List;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.slf4j.LoggerFactory;

/**
 * What pgrelay logged during the current test, for tests whose oracle is a log line.
 *
 * <pre>{@code
 * @RegisterExtension final CapturedLogs logs = new CapturedLogs();
 * ... logs.events() ...
 * }</pre>
 *
 * Each test starts with nothing captured; the appender is detached after it.
 */
public final class CapturedLogs implements BeforeEachCallback, AfterEachCallback {

    private final Logger logger = (Logger) LoggerFactory.getLogger("io.pgrelay");
    private ListAppender<ILoggingEvent> appender;

    @Override
    public void beforeEach(ExtensionContext context) {
        appender = new ListAppender<>();
        appender.start();
        logger.addAppender(appender);
    }

    @Override
    public void afterEach(ExtensionContext context) {
        logger.detachAppender(appender);
        appender.stop();
    }

    /** The events logged since this test started (logback's ListAppender list). */
    public List<ILoggingEvent> events() {
        return appender.list;
    }
}
