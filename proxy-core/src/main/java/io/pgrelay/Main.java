package io.pgrelay;

import com.typesafe.config.ConfigException;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.proxy.PgRelay;
import io.pgrelay.tls.TlsSetupException;
import java.io.File;
import java.io.UncheckedIOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;

/**
 * {@code java -jar pgrelay.jar [conf/pgrelay.conf]}. SIGTERM: graceful stop bounded by
 * runtime.shutdown_timeout; SIGINT or a second SIGTERM: stop at once; SIGHUP: reload the
 * configuration and the auth file.
 */
public final class Main {

    private static final Logger log = LoggerFactory.getLogger(Main.class);

    private Main() {}

    public static void main(String[] args) throws Exception {
        // Netty's default leak detection samples one buffer in 128 and records a stack trace for
        // each: measured at ~3 % of the relay thread. The tests run it at paranoid; a -D on the
        // command line still wins.
        if (System.getProperty("io.netty.leakDetection.level") == null) {
            System.setProperty("io.netty.leakDetection.level", "disabled");
        }
        File file = new File(args.length > 0 ? args[0] : "conf/pgrelay.conf");
        ProxyConfig config;
        PgRelay relay;
        try {
            File source = file.exists() || args.length > 0 ? file : null;
            config = ProxyConfig.load(source);
            relay = new PgRelay(config, source);
            relay.start();
        } catch (ConfigException
                | TlsSetupException
                | UncheckedIOException
                | IllegalStateException
                | IllegalArgumentException e) {
            log.error("cannot start: {}", e.getMessage());
            System.exit(2);
            return;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        AtomicInteger terms = new AtomicInteger();
        Signal.handle(
                new Signal("TERM"),
                s -> {
                    if (terms.incrementAndGet() == 1) {
                        Thread t =
                                new Thread(
                                        () -> {
                                            try {
                                                relay.shutdown(config.shutdownTimeout());
                                            } catch (InterruptedException ignored) {
                                                Thread.currentThread().interrupt();
                                            } finally {
                                                stopped.countDown();
                                            }
                                        },
                                        "pgrelay-shutdown");
                        t.start();
                    } else {
                        log.info("second SIGTERM: stopping now");
                        relay.close();
                        stopped.countDown();
                    }
                });
        Signal.handle(
                new Signal("HUP"),
                s -> {
                    String error = relay.reload();
                    if (error != null) {
                        log.error("SIGHUP: {}", error);
                    }
                });
        Signal.handle(
                new Signal("INT"),
                s -> {
                    log.info("SIGINT: stopping now");
                    relay.close();
                    stopped.countDown();
                });
        stopped.await();
        System.exit(0);
    }
}
