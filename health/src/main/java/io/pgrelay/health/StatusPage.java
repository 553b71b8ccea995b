package io.pgrelay.health;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * The human-facing stats page, in the spirit of HAProxy's: one table per section the proxy supplies
 * (pools, backends, clients), reloaded by the browser every few seconds. Every value is
 * HTML-escaped because cells carry user, database and host names that come from clients and from
 * the topology store.
 */
public final class StatusPage {

    static final int REFRESH_SECONDS = 5;

    /** One table. A row shorter than {@code columns} is padded; a null cell renders empty. */
    public record Section(String title, List<String> columns, List<List<String>> rows) {

        public Section {
            Objects.requireNonNull(title, "title");
            columns = List.copyOf(columns);
            List<List<String>> copied = new ArrayList<>(rows.size());
            for (List<String> row : rows) {
                copied.add(Collections.unmodifiableList(new ArrayList<>(row)));
            }
            rows = Collections.unmodifiableList(copied);
        }
    }

    private StatusPage() {}

    static String render(String title, Health readiness, List<Section> sections) {
        StringBuilder html = new StringBuilder(4096);
        html.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">")
                .append("<meta http-equiv=\"refresh\" content=\"")
                .append(REFRESH_SECONDS)
                .append("\">")
                .append("<title>")
                .append(escape(title))
                .append("</title>\n<style>")
                .append("body{font-family:sans-serif;font-size:13px;margin:1em;color:#222}")
                .append("h1{font-size:18px}h2{font-size:15px;margin:1.2em 0 .3em}")
                .append("table{border-collapse:collapse}")
                .append("th,td{border:1px solid #bbb;padding:2px 8px;text-align:left}")
                .append("th{background:#dde4ee}tr:nth-child(even) td{background:#f4f6f9}")
                .append("td.n{text-align:right;font-variant-numeric:tabular-nums}")
                .append(".up{color:#176f2c}.down{color:#b3261e}.note{color:#666}")
                .append("</style></head><body>\n");
        html.append("<h1>")
                .append(escape(title))
                .append("</h1>\n<p>Readiness: <b class=\"")
                .append(readiness.isUp() ? "up" : "down")
                .append("\">")
                .append(escape(readiness.status()))
                .append("</b>");
        for (String reason : readiness.reasons()) {
            html.append(" &middot; ").append(escape(reason));
        }
        html.append(" <span class=\"note\">(")
                .append(Instant.now().truncatedTo(ChronoUnit.SECONDS))
                .append(", refreshes every ")
                .append(REFRESH_SECONDS)
                .append(" s)</span></p>\n");
        for (Section section : sections) {
            appendSection(html, section);
        }
        return html.append("</body></html>\n").toString();
    }

    private static void appendSection(StringBuilder html, Section section) {
        html.append("<h2>").append(escape(section.title())).append("</h2>\n<table><tr>");
        for (String column : section.columns()) {
            html.append("<th>").append(escape(column)).append("</th>");
        }
        html.append("</tr>\n");
        if (section.rows().isEmpty()) {
            html.append("<tr><td class=\"note\" colspan=\"")
                    .append(Math.max(1, section.columns().size()))
                    .append("\">none</td></tr>\n");
        }
        for (List<String> row : section.rows()) {
            html.append("<tr>");
            int cells = Math.max(row.size(), section.columns().size());
            for (int i = 0; i < cells; i++) {
                String value = i < row.size() && row.get(i) != null ? row.get(i) : "";
                html.append(isNumber(value) ? "<td class=\"n\">" : "<td>")
                        .append(escape(value))
                        .append("</td>");
            }
            html.append("</tr>\n");
        }
        html.append("</table>\n");
    }

    // Right-aligning counts and durations is what makes a wall of pool numbers scannable.
    private static boolean isNumber(String value) {
        if (value.isEmpty()) {
            return false;
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if ((c < '0' || c > '9') && c != '.' && c != '-' && c != '%') {
                return false;
            }
        }
        return true;
    }

    static String escape(String text) {
        StringBuilder out = null;
        for (int i = 0; i < text.length(); i++) {
            String replacement =
                    switch (text.charAt(i)) {
                        case '<' -> "&lt;";
                        case '>' -> "&gt;";
                        case '&' -> "&amp;";
                        case '"' -> "&quot;";
                        case '\'' -> "&#39;";
                        default -> null;
                    };
            if (replacement != null && out == null) {
                out = new StringBuilder(text.length() + 16).append(text, 0, i);
            }
            if (out != null) {
                if (replacement != null) {
                    out.append(replacement);
                } else {
                    out.append(text.charAt(i));
                }
            }
        }
        return out == null ? text : out.toString();
    }
}
