package io.pgrelay.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.pgrelay.session.PreparedStatements.Statement;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The statement cache shares one entry per distinct statement however many clients use it; reports
 * what 1,000 clients x 20 statements cost (the per-client name maps dominate).
 */
class StatementCacheFootprintTest {

    private static byte[] parseBody(int n) {
        String sql =
                "select id, name, value, updated_at from table_"
                        + n
                        + " where tenant_id = $1 and id = $2"
                        + " order by updated_at desc limit 50";
        byte[] q = sql.getBytes(StandardCharsets.UTF_8);
        byte[] body = new byte[q.length + 1 + 2 + 8];
        System.arraycopy(q, 0, body, 0, q.length);
        body[q.length + 2] = 2; // two parameters, types unspecified (0)
        return body;
    }

    private static long usedHeap() {
        Runtime rt = Runtime.getRuntime();
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return rt.totalMemory() - rt.freeMemory();
    }

    @Test
    void thousandClientsTimesTwentyStatements() {
        PreparedStatements cache = new PreparedStatements(Long.MAX_VALUE);
        long before = usedHeap();
        List<Map<String, Statement>> clients = new ArrayList<>();
        for (int c = 0; c < 1000; c++) {
            Map<String, Statement> names = new HashMap<>();
            for (int s = 0; s < 20; s++) {
                names.put("S_" + (s + 1), cache.intern(parseBody(s)));
            }
            clients.add(names);
        }
        long after = usedHeap();
        assertEquals(20, cache.size());
        assertSame(clients.get(0).get("S_3"), clients.get(999).get("S_3"));
        System.out.printf(
                "StatementCacheFootprintTest: 1000 clients x 20 statements: %d shared entries, %d bytes of"
                        + " statement text; heap growth about %d kB (%.0f bytes per client)%n",
                cache.size(), cache.bytes(), (after - before) / 1024, (after - before) / 1000.0);
        for (Map<String, Statement> names : clients) {
            names.values().forEach(cache::release);
        }
        assertEquals(0, cache.size());
    }
}
