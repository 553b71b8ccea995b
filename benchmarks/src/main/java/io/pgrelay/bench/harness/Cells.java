package io.pgrelay.bench.harness;

/** Marks on table cells. */
final class Cells {
    private Cells() {}

    /**
     * The cell, with " †" when it is a prepared point of PgBouncer 1.18 (pgbouncer, or haproxy in
     * front of it) or a ratio against it: 1.18 has no prepared-statement support in transaction
     * mode, so that is not a comparison (the footnote says so).
     */
    static String mark(String cell, String targetOrPair, String protocol) {
        if (!protocol.equals("prepared")
                || cell.equals("-")
                || cell.equals("n/a")
                || cell.equals("skip")) {
            return cell;
        }
        String padded = "/" + targetOrPair + "/";
        return padded.contains("/pgbouncer/") || padded.contains("/haproxy/") ? cell + " †" : cell;
    }
}
