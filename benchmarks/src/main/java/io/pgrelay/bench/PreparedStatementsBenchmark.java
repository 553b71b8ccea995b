package io.pgrelay.bench;

import io.pgrelay.proxy.PreparedStatements;
import io.pgrelay.proxy.PreparedStatements.Statement;
import io.pgrelay.proxy.SessionParameters;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The per-statement and per-lease bookkeeping of transaction mode that is not I/O: the shared
 * prepared-statement cache and the session-parameter check.
 *
 * <ul>
 *   <li>{@link #internHit}: {@code PreparedStatements.intern} + {@code release} of a statement the
 *       cache already holds — what a named Parse from a client costs when another client prepared
 *       the same query before (the common case once an application is warm; every client of a
 *       connection pool with server-side prepared statements parses the same few hundred queries).
 *       The Parse body is 150 bytes (135-byte query, 3 parameter type OIDs). The incoming body is a
 *       different array from the cached one, as in the relay (it copies each Parse body out of the
 *       frame), so the hit pays the full hash and byte-by-byte comparison; passing the cached array
 *       itself would let {@code Arrays.equals} short-cut on identity.
 *   <li>{@link #internParameters}: {@code SessionParameters.intern} of a client's 12 session
 *       parameters (the server's welcome ParameterStatus values overlaid with a pgjdbc startup
 *       packet), already in the intern cache: a {@code Map.copyOf} plus a Caffeine hit. The relay
 *       does it once per lease after the client's parameters changed, then compares identities.
 *   <li>{@link #synchronizeEqual}: {@code SessionParameters.synchronize} when the server connection
 *       already has the client's values: the map comparison the interning avoids on most leases,
 *       and what a lease costs when a connection was last set up for a client with other parameters
 *       that happen to be equal. Returns null (no SET needed) and leaves both maps unchanged.
 * </ul>
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
@Threads(1)
@State(Scope.Benchmark)
public class PreparedStatementsBenchmark {

    static final String QUERY =
            "SELECT o.id, o.status, o.total_cents, o.created_at FROM orders o"
                    + " WHERE o.customer_id = $1 AND o.created_at >= $2 ORDER BY o.id LIMIT $3";
    static final int[] PARAMETER_TYPES = {20, 1184, 23}; // int8, timestamptz, int4
    static final int BODY_LENGTH = 150;

    PreparedStatements statements;

    /** The body another client's Parse registered: holds the cache entry for the whole run. */
    byte[] registeredBody;

    Statement registered;

    /** The same bytes in a fresh array, as a later client's Parse delivers them. */
    byte[] incomingBody;

    /**
     * What ClientSession keeps: the welcome overlaid with the startup packet, in a LinkedHashMap.
     */
    Map<String, String> clientValues;

    /** What ServerConnection keeps: ParameterStatus values in a ConcurrentHashMap. */
    Map<String, String> serverValues;

    @Setup(Level.Trial)
    public void setUp() {
        registeredBody = parseBody(QUERY, PARAMETER_TYPES);
        incomingBody = registeredBody.clone();
        if (registeredBody.length != BODY_LENGTH) {
            throw new IllegalStateException(
                    "Parse body is " + registeredBody.length + " bytes, expected " + BODY_LENGTH);
        }
        statements = new PreparedStatements(Long.MAX_VALUE);
        registered = statements.intern(registeredBody);
        Statement hit = statements.intern(incomingBody);
        if (hit != registered || statements.size() != 1) {
            throw new IllegalStateException("intern of an equal body missed the cache");
        }
        statements.release(hit);

        Map<String, String> welcome =
                new LinkedHashMap<>(); // PostgreSQL 16 ParameterStatus at login
        welcome.put("application_name", "");
        welcome.put("client_encoding", "UTF8");
        welcome.put("DateStyle", "ISO, MDY");
        welcome.put("integer_datetimes", "on");
        welcome.put("IntervalStyle", "postgres");
        welcome.put("is_superuser", "off");
        welcome.put("server_encoding", "UTF8");
        welcome.put("server_version", "16.4");
        welcome.put("session_authorization", "orders_app");
        welcome.put("standard_conforming_strings", "on");
        welcome.put("TimeZone", "Etc/UTC");
        clientValues = new LinkedHashMap<>(welcome);
        // pgjdbc 42.7 startup packet (user and database are not session parameters)
        clientValues.put("application_name", "orders-api");
        clientValues.put("client_encoding", "UTF8");
        clientValues.put("DateStyle", "ISO");
        clientValues.put("TimeZone", "Europe/Berlin");
        clientValues.put("extra_float_digits", "2");
        if (clientValues.size() != 12) {
            throw new IllegalStateException(
                    "client parameters: " + clientValues.size() + ", expected 12");
        }
        serverValues = new ConcurrentHashMap<>(clientValues);

        Map<String, String> interned = SessionParameters.intern(clientValues);
        if (SessionParameters.intern(new LinkedHashMap<>(clientValues)) != interned) {
            throw new IllegalStateException(
                    "equal parameter maps were not interned to one instance");
        }
        if (SessionParameters.synchronize(clientValues, serverValues) != null
                || !serverValues.equals(clientValues)) {
            throw new IllegalStateException("equal parameter maps need a SET");
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (statements.size() != 1 || registered.references() != 1) {
            throw new IllegalStateException(
                    "cache changed: "
                            + statements.size()
                            + " entries, "
                            + registered.references()
                            + " references");
        }
        if (!serverValues.equals(clientValues)) {
            throw new IllegalStateException("synchronize changed the server's parameters");
        }
    }

    @Benchmark
    public void internHit(Blackhole bh) {
        Statement statement = statements.intern(incomingBody);
        bh.consume(statement.serverName);
        statements.release(statement);
    }

    @Benchmark
    public void internParameters(Blackhole bh) {
        bh.consume(SessionParameters.intern(clientValues));
    }

    @Benchmark
    public void synchronizeEqual(Blackhole bh) {
        bh.consume(SessionParameters.synchronize(clientValues, serverValues));
    }

    /** The statement part of a Parse body (after the name): query, NUL, Int16 count, Int32 OIDs. */
    static byte[] parseBody(String query, int[] parameterTypes) {
        byte[] text = query.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(text.length + 1 + 2 + 4 * parameterTypes.length);
        b.put(text).put((byte) 0).putShort((short) parameterTypes.length);
        for (int oid : parameterTypes) {
            b.putInt(oid);
        }
        return b.array();
    }
}
