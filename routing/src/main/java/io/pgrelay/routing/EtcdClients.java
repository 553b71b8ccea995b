package io.pgrelay.routing;

import io.etcd.jetcd.Client;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** The jetcd client settings pgrelay's etcd users share. */
final class EtcdClients {

    private EtcdClients() {}

    static Client build(EtcdTopologySource.Settings settings) {
        List<String> urls = new ArrayList<>();
        for (String endpoint : settings.endpoints()) {
            urls.add(EtcdTopologySource.Settings.endpointUri(endpoint).toString());
        }
        return Client.builder()
                .endpoints(urls.toArray(new String[0]))
                .connectTimeout(settings.requestTimeout())
                // fail fast instead of queueing calls behind a channel in reconnect backoff
                .waitForReady(false)
                // etcd's default --grpc-keepalive-min-time is 5 s; pinging more often gets us cut
                // off
                .keepaliveTime(Duration.ofSeconds(10))
                .keepaliveTimeout(Duration.ofSeconds(5))
                .build();
    }
}
