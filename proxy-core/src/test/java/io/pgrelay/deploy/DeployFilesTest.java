package io.pgrelay.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import io.pgrelay.config.EnvOverrides;
import io.pgrelay.config.ProxyConfig;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/**
 * deploy/: the Dockerfile, the container config, the Swarm stack and the Kubernetes manifests agree
 * with each other and with pgrelay's settings (ports, probe paths, grace periods against
 * runtime.shutdown_timeout, PGRELAY_ variable names). No container engine runs here; this and
 * ContainerEntrypointIT (which runs the image's entrypoint on a laid-out copy) are what is checked.
 */
class DeployFilesTest {

    static final Path ROOT = repositoryRoot();
    static final Path DEPLOY = ROOT.resolve("deploy");

    private static final Config DEFAULTS = ProxyConfig.defaults();
    private static final Config CONTAINER_FILE =
            ConfigFactory.parseFile(
                    DEPLOY.resolve("pgrelay.conf").toFile(),
                    ConfigParseOptions.defaults().setAllowMissing(false));

    /** The settings the image runs with, before any environment variable. */
    private static final ProxyConfig CONTAINER = withEnv(Map.of());

    private final Dockerfile dockerfile = Dockerfile.read(DEPLOY.resolve("Dockerfile"));

    static Path repositoryRoot() {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null && !Files.isRegularFile(dir.resolve("deploy/Dockerfile"))) {
            dir = dir.getParent();
        }
        assertNotNull(dir, "no deploy/Dockerfile above " + Path.of("").toAbsolutePath());
        return dir;
    }

    /** The container config with {@code env} on top, as bin/pgrelay in the image would load it. */
    private static ProxyConfig withEnv(Map<String, String> env) {
        Config c =
                EnvOverrides.from(env, DEFAULTS)
                        .config()
                        .withFallback(CONTAINER_FILE)
                        .withFallback(DEFAULTS)
                        .resolve();
        return ProxyConfig.from(c.getConfig("pgrelay"));
    }

    private static boolean isSetting(String path) {
        return DEFAULTS.hasPath("pgrelay." + path);
    }

    /** A variable bin/pgrelay or pgrelay reads: a launcher variable or a setting's. */
    private static void assertKnownVariable(String name, String where) {
        if (!name.startsWith(EnvOverrides.PREFIX)
                || EnvOverrides.LAUNCHER_VARIABLES.contains(name)) {
            return;
        }
        Set<String> names = new TreeSet<>(EnvOverrides.names(DEFAULTS).keySet());
        assertTrue(names.contains(name), where + ": " + name + " is no pgrelay setting");
    }

    private static Set<Integer> servedPorts(ProxyConfig c) {
        return Set.of(c.writePort(), c.readPort(), c.httpPort());
    }

    // ------------------------------------------------------------------ container config

    @Test
    void containerConfigNamesOnlySettings() {
        for (var e : CONTAINER_FILE.getConfig("pgrelay").entrySet()) {
            assertTrue(isSetting(e.getKey()), "deploy/pgrelay.conf: unknown " + e.getKey());
        }
    }

    @Test
    void containerConfigServesTheNetworkAndReadsSecrets() {
        assertEquals("0.0.0.0", CONTAINER.listenHost());
        assertEquals("0.0.0.0", CONTAINER.httpHost());
        assertTrue(CONTAINER.httpPort() > 0, "probes need the HTTP port");
        assertEquals("patroni", CONTAINER.routingSource());
        for (Path secret :
                List.of(
                        CONTAINER.authFile(),
                        CONTAINER.clientTls().keyFile(),
                        CONTAINER.clientTls().certFile())) {
            assertEquals(Path.of("/run/secrets"), secret.getParent(), secret.toString());
        }
    }

    @Test
    void containerJvmOptionsDifferFromTheHostsOnlyInTheHeap() throws IOException {
        List<String> host = jvmOptions(ROOT.resolve("conf/jvm.options"));
        List<String> container = jvmOptions(DEPLOY.resolve("jvm.options"));
        List<String> hostWithoutHeap =
                host.stream().filter(o -> !o.startsWith("-Xmx") && !o.startsWith("-Xms")).toList();
        List<String> containerWithoutHeap =
                container.stream().filter(o -> !o.contains("RAMPercentage=")).toList();
        assertEquals(hostWithoutHeap, containerWithoutHeap);
        assertTrue(
                container.stream().noneMatch(o -> o.startsWith("-Xmx") || o.startsWith("-Xms")),
                "-Xmx/-Xms would win over the percentages: " + container);

        // Heap and direct memory (whose default limit is the heap maximum) fit the memory limits
        // the manifests set, and the limit on large buffered messages fits direct memory.
        double percent = maxRamPercentage(container);
        assertTrue(2 * percent <= 80, "heap + direct memory leave room for the rest: " + percent);
        long swarmLimit = memory(swarmService(), "deploy", "resources", "limits", "memory");
        long k8sLimit = memory(pgrelayContainer(), "resources", "limits", "memory");
        for (long limit : List.of(swarmLimit, k8sLimit)) {
            long heap = (long) (limit * percent / 100);
            assertTrue(
                    CONTAINER.limits().maxBufferedMessageBytes() <= heap,
                    "limits.max_buffered_message_bytes over direct memory at limit " + limit);
        }
    }

    private static List<String> jvmOptions(Path file) throws IOException {
        // bin/pgrelay's reading: '#' to the end of the line is a comment, blank lines skipped.
        return Files.readAllLines(file).stream()
                .map(l -> l.replaceFirst("#.*", "").strip())
                .filter(l -> !l.isEmpty())
                .toList();
    }

    private static double maxRamPercentage(List<String> options) {
        return options.stream()
                .filter(o -> o.startsWith("-XX:MaxRAMPercentage="))
                .map(o -> Double.parseDouble(o.substring(o.indexOf('=') + 1)))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no -XX:MaxRAMPercentage: " + options));
    }

    // ------------------------------------------------------------------ Dockerfile

    @Test
    void dockerfileExposesWhatTheConfigServes() {
        assertEquals(servedPorts(CONTAINER), Set.copyOf(dockerfile.exposedPorts()));
    }

    @Test
    void dockerfileRunsPgrelayUnwrappedAsNonRoot() {
        List<String> entrypoint = dockerfile.entrypoint(); // exec form, or this throws
        assertEquals(imagePathOf("bin/pgrelay"), entrypoint.get(0));
        assertEquals("SIGTERM", dockerfile.stopSignal());
        String user = dockerfile.user().split(":")[0];
        assertFalse(user.equals("0") || user.equals("root"), "USER " + user);
        assertTrue(user.matches("\\d+"), "numeric, for runAsNonRoot: " + user);
        assertEquals(
                "10001",
                user,
                "the uid the Swarm secret and the Kubernetes securityContext give the files to");
    }

    @Test
    void dockerfilePointsTheLauncherAtWhatItCopies() {
        Map<String, String> env = dockerfile.env();
        env.keySet().forEach(n -> assertKnownVariable(n, "Dockerfile ENV"));
        assertEquals(imagePathOf("proxy-core/target/pgrelay.jar"), env.get("PGRELAY_JAR"));
        assertEquals(imagePathOf("deploy/jvm.options"), env.get("PGRELAY_JVM_OPTIONS"));
        // The config argument, relative to WORKDIR, is where deploy/pgrelay.conf was copied.
        List<String> cmd = dockerfile.cmd();
        assertEquals(imagePathOf("deploy/pgrelay.conf"), dockerfile.workdir() + "/" + cmd.get(0));
    }

    @Test
    void everythingCopiedExistsAndPassesTheDockerignore() throws IOException {
        Set<String> admitted =
                Files.readAllLines(DEPLOY.resolve("Dockerfile.dockerignore")).stream()
                        .filter(l -> l.startsWith("!"))
                        .map(l -> l.substring(1))
                        .collect(Collectors.toSet());
        for (Dockerfile.Copy copy : dockerfile.copies()) {
            for (String source : copy.sources()) {
                assertTrue(admitted.contains(source), source + " is excluded from the context");
                // The jar is built by `mvn package`; the rest is in the repository.
                if (!source.contains("/target/")) {
                    assertTrue(Files.isRegularFile(ROOT.resolve(source)), source);
                }
            }
        }
    }

    @Test
    void dockerHealthcheckAsksReadyAndOutlastsALeaderWait() {
        Dockerfile.Healthcheck hc = dockerfile.healthcheck();
        assertEquals(List.of(imagePathOf("deploy/pgrelay-probe"), "/ready"), hc.command());
        assertOutlastsLeaderWait(hc.interval().multipliedBy(hc.retries()), "HEALTHCHECK");
    }

    /**
     * Swarm replaces a task whose healthcheck fails this long; a failover, during which /ready says
     * 503 while writes wait up to leader_wait_timeout, must not get there.
     */
    private static void assertOutlastsLeaderWait(Duration unhealthyAfter, String where) {
        assertTrue(
                unhealthyAfter.compareTo(CONTAINER.leaderWaitTimeout()) > 0,
                where
                        + ": unhealthy after "
                        + unhealthyAfter
                        + ", a leader wait takes up to "
                        + CONTAINER.leaderWaitTimeout());
    }

    /** Where the Dockerfile puts {@code source} (a repository path) in the image. */
    private String imagePathOf(String source) {
        List<String> targets =
                dockerfile.copies().stream()
                        .filter(c -> c.sources().contains(source))
                        .map(c -> c.target(source))
                        .toList();
        assertEquals(1, targets.size(), "copies of " + source + ": " + targets);
        return targets.get(0);
    }

    // ------------------------------------------------------------------ Swarm

    @SuppressWarnings("unchecked")
    private static Map<String, Object> swarmStack() {
        return (Map<String, Object>) loadAll(DEPLOY.resolve("swarm/pgrelay-stack.yml")).get(0);
    }

    private static Map<String, Object> swarmService() {
        return map(swarmStack(), "services", "pgrelay");
    }

    @Test
    void swarmRunsOneInstancePerNodeOnTheConfiguredPorts() {
        Map<String, Object> service = swarmService();
        Map<String, Object> deploy = map(service, "deploy");
        assertEquals(3, deploy.get("replicas"));
        assertEquals(1, map(deploy, "placement").get("max_replicas_per_node"));

        Set<Integer> published = new TreeSet<>();
        for (Map<String, Object> port : list(service, "ports")) {
            assertEquals(port.get("target"), port.get("published"));
            // The routing mesh, as the seed's services: any instance may get any connection.
            assertTrue(port.get("mode") == null || port.get("mode").equals("ingress"));
            published.add((Integer) port.get("target"));
        }
        assertEquals(Set.of(CONTAINER.writePort(), CONTAINER.readPort()), published);
        assertEquals("vip", deploy.get("endpoint_mode"));
        assertTrue(
                String.valueOf(service.get("hostname")).contains("{{.Node.Hostname}}"),
                "instance ids (the host name) say which node");
    }

    @Test
    void swarmUpdatesStopFirstAndWaitsForTheDrain() {
        Map<String, Object> service = swarmService();
        Map<String, Object> update = map(service, "deploy", "update_config");
        // One per node on every node: a start-first replacement would have nowhere to go.
        assertEquals("stop-first", update.get("order"));
        assertEquals(1, update.get("parallelism"));
        assertEquals("SIGTERM", service.get("stop_signal"));
        Duration grace = Dockerfile.goDuration((String) service.get("stop_grace_period"));
        assertTrue(
                grace.compareTo(CONTAINER.shutdownTimeout()) > 0,
                "stop_grace_period " + grace + " <= shutdown_timeout");
    }

    @Test
    void swarmHealthcheckIsTheImages() {
        Map<String, Object> hc = map(swarmService(), "healthcheck");
        Dockerfile.Healthcheck image = dockerfile.healthcheck();
        List<String> test = strings(hc.get("test"));
        assertEquals("CMD", test.get(0));
        assertEquals(image.command(), test.subList(1, test.size()));
        Duration interval = Dockerfile.goDuration((String) hc.get("interval"));
        assertOutlastsLeaderWait(
                interval.multipliedBy((Integer) hc.get("retries")), "stack healthcheck");
    }

    @Test
    void swarmGivesTheConfigAndAuthFileWhereTheImageReadsThem() {
        Map<String, Object> stack = swarmStack();
        Map<String, Object> service = swarmService();
        Map<String, Object> config = list(service, "configs").get(0);
        assertEquals(imagePathOf("deploy/pgrelay.conf"), config.get("target"));
        String file = (String) map(stack, "configs", (String) config.get("source")).get("file");
        assertEquals(
                DEPLOY.resolve("pgrelay.conf").normalize(),
                DEPLOY.resolve("swarm").resolve(file).normalize());

        Map<String, Object> secret = list(service, "secrets").get(0);
        assertEquals(
                CONTAINER.authFile(),
                Path.of("/run/secrets").resolve((String) secret.get("target")));
        assertEquals(dockerfile.user().split(":")[0], secret.get("uid"));
    }

    @Test
    void swarmEnvironmentIsValidSettings() {
        Map<String, String> env = stringMap(map(swarmService(), "environment"));
        env.keySet().forEach(n -> assertKnownVariable(n, "stack environment"));
        ProxyConfig effective = withEnv(env);
        assertEquals(3, effective.etcdEndpoints().size(), effective.etcdEndpoints().toString());
    }

    // ------------------------------------------------------------------ Kubernetes

    /** Every document of every manifest in deploy/kubernetes/, by kind and name. */
    private static Map<String, Map<String, Object>> manifests() {
        Map<String, Map<String, Object>> byKindAndName = new LinkedHashMap<>();
        try (Stream<Path> files = Files.list(DEPLOY.resolve("kubernetes"))) {
            for (Path f : files.sorted().toList()) {
                for (Object doc : loadAll(f)) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> m = (Map<String, Object>) doc;
                    String key =
                            m.get("kind").equals("Kustomization")
                                    ? "Kustomization"
                                    : m.get("kind") + "/" + map(m, "metadata").get("name");
                    assertEquals(null, byKindAndName.put(key, m), "twice: " + key);
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return byKindAndName;
    }

    private static Map<String, Object> manifest(String kindAndName) {
        Map<String, Object> m = manifests().get(kindAndName);
        assertNotNull(m, kindAndName + " in deploy/kubernetes/");
        return m;
    }

    private static Map<String, Object> podSpec() {
        return map(manifest("Deployment/pgrelay"), "spec", "template", "spec");
    }

    private static Map<String, Object> pgrelayContainer() {
        return list(podSpec(), "containers").stream()
                .filter(c -> c.get("name").equals("pgrelay"))
                .findFirst()
                .orElseThrow();
    }

    /** Container port name → number. */
    private static Map<String, Integer> containerPorts() {
        Map<String, Integer> ports = new LinkedHashMap<>();
        for (Map<String, Object> p : list(pgrelayContainer(), "ports")) {
            ports.put((String) p.get("name"), (Integer) p.get("containerPort"));
        }
        return ports;
    }

    @Test
    void kubernetesPortsAreTheConfigured() {
        Map<String, Integer> ports = containerPorts();
        assertEquals(
                Map.of(
                        "write", CONTAINER.writePort(),
                        "read", CONTAINER.readPort(),
                        "http", CONTAINER.httpPort()),
                ports);
        for (String service : List.of("Service/pgrelay", "Service/pgrelay-metrics")) {
            for (Map<String, Object> p : list(map(manifest(service), "spec"), "ports")) {
                assertTrue(ports.containsKey(p.get("targetPort")), service + ": " + p);
            }
        }
    }

    @Test
    void kubernetesProbesAskReadyAndHealth() {
        Map<String, Object> container = pgrelayContainer();
        Map<String, Object> readiness = map(container, "readinessProbe", "httpGet");
        Map<String, Object> liveness = map(container, "livenessProbe", "httpGet");
        assertEquals("/ready", readiness.get("path"));
        assertEquals("/health", liveness.get("path"));
        for (Map<String, Object> probe : List.of(readiness, liveness)) {
            assertEquals(CONTAINER.httpPort(), containerPorts().get(probe.get("port")));
        }
    }

    @Test
    void kubernetesGraceOutlastsPreStopAndTheDrain() {
        Map<String, Object> spec = podSpec();
        Map<String, Object> preStop = map(pgrelayContainer(), "lifecycle", "preStop");
        int preStopSeconds = (Integer) map(preStop, "sleep").get("seconds");
        assertTrue(preStopSeconds > 0);
        long grace = ((Integer) spec.get("terminationGracePeriodSeconds")).longValue();
        long needed = preStopSeconds + CONTAINER.shutdownTimeout().toSeconds();
        assertTrue(grace > needed, "terminationGracePeriodSeconds " + grace + " <= " + needed);
    }

    @Test
    void kubernetesEnvironmentIsValidSettings() {
        Map<String, Object> container = pgrelayContainer();
        Map<String, String> env = new LinkedHashMap<>();
        for (Map<String, Object> e : list(container, "env")) {
            String name = (String) e.get("name");
            assertKnownVariable(name, "Deployment env");
            env.put(name, "10.0.0.1"); // the only one is the pod IP, from the downward API
        }
        assertEquals(
                "status.podIP",
                list(container, "env").stream()
                        .filter(e -> e.get("name").equals("PGRELAY_PEERS_ADVERTISE_HOST"))
                        .map(e -> map(e, "valueFrom", "fieldRef").get("fieldPath"))
                        .findFirst()
                        .orElseThrow(() -> new AssertionError("no PGRELAY_PEERS_ADVERTISE_HOST")));
        for (Map<String, Object> from : list(container, "envFrom")) {
            String name = (String) map(from, "configMapRef").get("name");
            Map<String, String> data = stringMap(map(manifest("ConfigMap/" + name), "data"));
            data.keySet().forEach(n -> assertKnownVariable(n, "ConfigMap " + name));
            env.putAll(data);
        }
        ProxyConfig effective = withEnv(env);
        assertEquals(3, effective.etcdEndpoints().size(), effective.etcdEndpoints().toString());
    }

    @Test
    void kubernetesMountsTheSecretsWhereTheConfigReadsThem() {
        Map<String, Object> container = pgrelayContainer();
        Set<Path> mounted = new TreeSet<>();
        String mountPath =
                list(container, "volumeMounts").stream()
                        .filter(m -> m.get("name").equals("secrets"))
                        .map(m -> (String) m.get("mountPath"))
                        .findFirst()
                        .orElseThrow();
        Map<String, Object> volume =
                list(podSpec(), "volumes").stream()
                        .filter(v -> v.get("name").equals("secrets"))
                        .findFirst()
                        .orElseThrow();
        for (Map<String, Object> source : list(map(volume, "projected"), "sources")) {
            Map<String, Object> secret = map(source, "secret");
            for (Map<String, Object> item : list(secret, "items")) {
                mounted.add(Path.of(mountPath, (String) item.get("path")));
            }
            if (!Boolean.TRUE.equals(secret.get("optional"))) {
                // A required Secret is one of the manifests, with the keys the items name.
                Map<String, Object> manifest = manifest("Secret/" + secret.get("name"));
                for (Map<String, Object> item : list(secret, "items")) {
                    assertTrue(map(manifest, "stringData").containsKey(item.get("key")));
                }
            }
        }
        assertTrue(mounted.contains(CONTAINER.authFile()), mounted.toString());
        assertTrue(mounted.contains(CONTAINER.clientTls().keyFile()), mounted.toString());
        assertTrue(mounted.contains(CONTAINER.clientTls().certFile()), mounted.toString());
        // The service account token would be mounted under /run/secrets too.
        assertEquals(false, podSpec().get("automountServiceAccountToken"));
        assertEquals(
                Integer.parseInt(dockerfile.user().split(":")[0]),
                map(podSpec(), "securityContext").get("runAsUser"));
    }

    @Test
    void kubernetesLimitsMemoryAndSelectsItsPods() {
        assertTrue(memory(pgrelayContainer(), "resources", "limits", "memory") > 0);
        Map<String, Object> labels =
                map(manifest("Deployment/pgrelay"), "spec", "template", "metadata", "labels");
        assertSelects(
                map(manifest("Deployment/pgrelay"), "spec", "selector", "matchLabels"), labels);
        assertSelects(
                map(manifest("PodDisruptionBudget/pgrelay"), "spec", "selector", "matchLabels"),
                labels);
        for (String service : List.of("Service/pgrelay", "Service/pgrelay-metrics")) {
            assertSelects(map(manifest(service), "spec", "selector"), labels);
        }
        assertEquals(1, map(manifest("PodDisruptionBudget/pgrelay"), "spec").get("maxUnavailable"));
    }

    @Test
    void kubernetesMetricsAreScrapedFromTheHttpPort() {
        Map<String, Object> annotations =
                map(manifest("Deployment/pgrelay"), "spec", "template", "metadata", "annotations");
        assertEquals("true", annotations.get("prometheus.io/scrape"));
        assertEquals(String.valueOf(CONTAINER.httpPort()), annotations.get("prometheus.io/port"));
        assertEquals("/metrics", annotations.get("prometheus.io/path"));

        Map<String, Object> monitor = manifest("ServiceMonitor/pgrelay");
        Map<String, Object> metricsService = manifest("Service/pgrelay-metrics");
        assertSelects(
                map(monitor, "spec", "selector", "matchLabels"),
                map(metricsService, "metadata", "labels"));
        Map<String, Object> endpoint = list(map(monitor, "spec"), "endpoints").get(0);
        assertEquals("/metrics", endpoint.get("path"));
        Map<String, Object> port =
                list(map(metricsService, "spec"), "ports").stream()
                        .filter(p -> p.get("name").equals(endpoint.get("port")))
                        .findFirst()
                        .orElseThrow();
        assertEquals(CONTAINER.httpPort(), containerPorts().get(port.get("targetPort")));
        // The clients' Service does not carry the status page.
        assertFalse(
                list(map(manifest("Service/pgrelay"), "spec"), "ports").stream()
                        .anyMatch(p -> p.get("targetPort").equals("http")));
    }

    @Test
    void kustomizationListsEveryManifestButTheServiceMonitor() throws IOException {
        List<String> resources = strings(manifest("Kustomization").get("resources"));
        List<String> files = new ArrayList<>();
        try (Stream<Path> list = Files.list(DEPLOY.resolve("kubernetes"))) {
            list.map(p -> p.getFileName().toString())
                    .filter(
                            n ->
                                    !n.equals("kustomization.yaml")
                                            && !n.equals("servicemonitor.yaml"))
                    .sorted()
                    .forEach(files::add);
        }
        assertEquals(files, resources.stream().sorted().toList());
    }

    private static void assertSelects(Map<String, Object> selector, Map<String, Object> labels) {
        for (var e : selector.entrySet()) {
            assertEquals(
                    e.getValue(), labels.get(e.getKey()), "selector " + selector + " vs " + labels);
        }
    }

    // ------------------------------------------------------------------ YAML access

    private static List<Object> loadAll(Path file) {
        try (Reader r = Files.newBufferedReader(file)) {
            List<Object> docs = new ArrayList<>();
            new Yaml()
                    .loadAll(r)
                    .forEach(
                            d -> {
                                if (d != null) {
                                    docs.add(d);
                                }
                            });
            return docs;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Map<String, Object> from, String... keys) {
        Map<String, Object> m = from;
        for (String k : keys) {
            Object v = m.get(k);
            if (!(v instanceof Map)) {
                fail("no mapping at " + k + " in " + m.keySet());
            }
            m = (Map<String, Object>) v;
        }
        return m;
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> list(Map<String, Object> from, String key) {
        Object v = from.get(key);
        if (!(v instanceof List)) {
            fail("no list at " + key + " in " + from.keySet());
        }
        return (List<Map<String, Object>>) v;
    }

    private static List<String> strings(Object yamlList) {
        return ((List<?>) yamlList).stream().map(String::valueOf).toList();
    }

    private static Map<String, String> stringMap(Map<String, Object> m) {
        Map<String, String> out = new LinkedHashMap<>();
        m.forEach((k, v) -> out.put(k, String.valueOf(v)));
        return out;
    }

    private static final Pattern QUANTITY = Pattern.compile("(\\d+)([KMG]i?)?[bB]?");

    /** A memory quantity, Kubernetes' ("1Gi", "512Mi") or Compose's ("1G", "512M": binary too). */
    private static long memory(Map<String, Object> from, String... path) {
        Map<String, Object> parent = map(from, java.util.Arrays.copyOf(path, path.length - 1));
        String text = String.valueOf(parent.get(path[path.length - 1]));
        Matcher m = QUANTITY.matcher(text);
        assertTrue(m.matches(), "memory quantity " + text);
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "" : m.group(2).substring(0, 1);
        return switch (unit) {
            case "K" -> n << 10;
            case "M" -> n << 20;
            case "G" -> n << 30;
            default -> n;
        };
    }
}
