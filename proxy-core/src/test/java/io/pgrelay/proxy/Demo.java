package io.pgrelay.proxy;

import io.pgrelay.testkit.PatroniCluster;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * A local demo on loopback, built from the test harness: etcd, a 3-node Patroni cluster (PostgreSQL
 * 15 as user postgres) and pgrelay in front of it on 5432 (writes) and 5433 (reads), the console on
 * both, /metrics and the status page on http://127.0.0.1:7000/. Runs until Ctrl-C, then removes
 * everything it started.
 *
 * <pre>mvn -B -q -DskipTests install && mvn -B -q -pl proxy-core exec:java@demo</pre>
 */
public final class Demo {

    private Demo() {}

    public static void main(String[] args) throws Exception {
        int writePort = Integer.getInteger("demo.write_port", 5432);
        int readPort = Integer.getInteger("demo.read_port", 5433);
        int httpPort = Integer.getInteger("demo.http_port", 7000);
        System.out.println("starting etcd and a 3-node Patroni cluster (about 20 s)...");
        PatroniCluster cluster = PatroniCluster.start("demo");
        RelayFixture relay =
                RelayFixture.patroni(cluster)
                        .set("listen.write_port", writePort)
                        .set("listen.read_port", readPort)
                        .set("admin.http_port", httpPort)
                        .set("admin.admin_users", List.of("postgres"))
                        .start();
        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime()
                .addShutdownHook(
                        new Thread(
                                () -> {
                                    relay.close();
                                    cluster.close();
                                    stop.countDown();
                                },
                                "demo-stop"));
        String leader = cluster.leaderName();
        System.out.printf(
                """

                pgrelay demo is up. Leader: %s. Members: %s
                  writes:   PGPASSWORD=app-secret psql -h 127.0.0.1 -p %d -U app appdb
                  reads:    PGPASSWORD=app-secret psql -h 127.0.0.1 -p %d -U app appdb -c 'select inet_server_port()'
                  console:  PGPASSWORD=postgres psql -h 127.0.0.1 -p %d -U postgres pgbouncer -c 'SHOW TOPOLOGY'
                  status:   http://127.0.0.1:%d/   metrics: http://127.0.0.1:%d/metrics
                  switchover: runuser -u postgres -- patronictl -c %s switchover demo --force
                Ctrl-C stops everything and removes its files.
                %n""",
                leader,
                cluster.members().stream().map(m -> m.name() + "@" + m.pgPort()).toList(),
                writePort,
                readPort,
                writePort,
                httpPort,
                httpPort,
                cluster.member(leader).config());
        stop.await();
    }
}
