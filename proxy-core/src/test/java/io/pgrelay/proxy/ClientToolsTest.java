package io.pgrelay.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.testkit.Proc;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** psql and pgbench through pgrelay, unchanged. */
class ClientToolsTest {

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres().withRelay(relay -> relay.set("pool.default_pool_size", 8));

    private Proc tool(String... cmd) {
        return Proc.of(cmd).cleanPgEnv().env("PGPASSWORD", "app-secret");
    }

    @Test
    void psqlScript() {
        String out =
                tool(
                                "psql",
                                "-X",
                                "-A",
                                "-t",
                                "-v",
                                "ON_ERROR_STOP=1",
                                "-h",
                                "127.0.0.1",
                                "-p",
                                String.valueOf(servers.relay().writePort()),
                                "-U",
                                "app",
                                "-d",
                                "appdb",
                                "-c",
                                "create table if not exists psql_t(i int)",
                                "-c",
                                "insert into psql_t select generate_series(1, 100)",
                                "-c",
                                "select sum(i) from psql_t")
                        .check()
                        .stdout();
        assertTrue(out.contains("5050"), out);
    }

    @Test
    void pgbenchSimpleAndExtendedWithoutFailures() {
        tool(
                        "pgbench",
                        "-i",
                        "-s",
                        "1",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        String.valueOf(servers.relay().writePort()),
                        "-U",
                        "app",
                        "appdb")
                .check();
        for (String mode : new String[] {"simple", "extended"}) {
            String out =
                    tool(
                                    "pgbench",
                                    "-n",
                                    "-M",
                                    mode,
                                    "-c",
                                    "32",
                                    "-j",
                                    "2",
                                    "-T",
                                    "3",
                                    "-h",
                                    "127.0.0.1",
                                    "-p",
                                    String.valueOf(servers.relay().writePort()),
                                    "-U",
                                    "app",
                                    "appdb")
                            .check()
                            .stdout();
            Matcher failed = Pattern.compile("number of failed transactions: (\\d+)").matcher(out);
            Matcher processed =
                    Pattern.compile("number of transactions actually processed: (\\d+)")
                            .matcher(out);
            assertTrue(processed.find(), out);
            assertTrue(Long.parseLong(processed.group(1)) > 0, out);
            if (failed.find()) {
                assertEquals("0", failed.group(1), out);
            }
        }
    }
}
