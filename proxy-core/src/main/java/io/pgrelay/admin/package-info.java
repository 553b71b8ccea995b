/**
 * The PgBouncer-compatible admin console: the virtual database {@code pgbouncer} (alias {@code
 * pgrelay}) on pgrelay's normal ports.
 *
 * <p>{@link io.pgrelay.admin.AdminSession} speaks the protocol for one console client; {@link
 * io.pgrelay.admin.AdminView} supplies what SHOW prints and {@link io.pgrelay.admin.AdminControl}
 * carries out PAUSE, RESUME, SET and the rest. The package knows nothing of pools or channels: the
 * proxy implements the two interfaces.
 *
 * <p>Compatibility decisions, for users moving from PgBouncer 1.25:
 *
 * <ul>
 *   <li>Columns, types and order are PgBouncer's; pgrelay's extras and the legacy names older
 *       exporters read (STATS {@code total_requests}, {@code avg_req}, {@code avg_query}; DATABASES
 *       {@code reserve_pool}) come after them, since tools match by name.
 *   <li>SHOW VERSION says {@code PgBouncer 1.25.0 (pgrelay x.y.z)}: tools choose their column sets
 *       from the PgBouncer version, and 1.25's is what is served.
 *   <li>Beyond PgBouncer: the extended query protocol (binary results where Bind asks, which pgjdbc
 *       does once a statement is server-prepared), several statements per query, SHOW TOPOLOGY and
 *       SHOW PREPARED_STATEMENTS. Not served: SUSPEND and SHOW
 *       FDS/SOCKETS/ACTIVE_SOCKETS/MEM/TOTALS (0A000); PEERS and DNS_* have no rows.
 *   <li>SQLSTATEs where PgBouncer sends 08P01 for everything: 42601 syntax, 42501 admin access
 *       needed, 55000 failed control command, 22023 failed SET.
 * </ul>
 */
package io.pgrelay.admin;
