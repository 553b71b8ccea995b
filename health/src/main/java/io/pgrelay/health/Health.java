package io.pgrelay.health;

import java.util.List;
import java.util.Objects;

/**
 * The answer to a liveness or readiness question: up or not, a status word for the JSON body, and
 * the reasons when not up. Suppliers of this type are polled on every HTTP request, so they should
 * read state the proxy already keeps rather than probe anything themselves.
 *
 * <p>The flag is {@code isUp} rather than {@code up} only because a record accessor {@code up()}
 * would collide with the {@link #up()} factory.
 */
public record Health(boolean isUp, String status, List<String> reasons) {

    public static final String UP = "UP";
    public static final String DOWN = "DOWN";
    public static final String NOT_READY = "NOT_READY";
    public static final String SHUTTING_DOWN = "SHUTTING_DOWN";

    private static final Health UP_HEALTH = new Health(true, UP, List.of());
    private static final Health SHUTTING_DOWN_HEALTH = new Health(false, SHUTTING_DOWN, List.of());

    public Health {
        Objects.requireNonNull(status, "status");
        reasons = List.copyOf(reasons);
    }

    public static Health up() {
        return UP_HEALTH;
    }

    public static Health down(String... reasons) {
        return new Health(false, DOWN, List.of(reasons));
    }

    public static Health notReady(String... reasons) {
        return new Health(false, NOT_READY, List.of(reasons));
    }

    /** Readiness from collected failures: up when there are none, so callers need no if/else. */
    public static Health readiness(List<String> unmetConditions) {
        return unmetConditions.isEmpty()
                ? UP_HEALTH
                : new Health(false, NOT_READY, unmetConditions);
    }

    /**
     * Readiness with notes that do not make it unready (a degraded but serving proxy): up with the
     * notes when nothing is unmet, else not ready with the unmet conditions and then the notes.
     */
    public static Health readiness(List<String> unmetConditions, List<String> notes) {
        if (notes.isEmpty()) {
            return readiness(unmetConditions);
        }
        if (unmetConditions.isEmpty()) {
            return new Health(true, UP, notes);
        }
        List<String> all = new java.util.ArrayList<>(unmetConditions);
        all.addAll(notes);
        return new Health(false, NOT_READY, all);
    }

    public static Health shuttingDown() {
        return SHUTTING_DOWN_HEALTH;
    }

    /**
     * {@code {"status":"UP"}}, or with a {@code reasons} array when there are any ({@code notes}
     * when up: they did not make it unready).
     */
    String toJson() {
        StringBuilder json = new StringBuilder("{\"status\":");
        Json.appendString(json, status);
        if (!reasons.isEmpty()) {
            json.append(isUp ? ",\"notes\":[" : ",\"reasons\":[");
            for (int i = 0; i < reasons.size(); i++) {
                if (i > 0) {
                    json.append(',');
                }
                Json.appendString(json, reasons.get(i));
            }
            json.append(']');
        }
        return json.append('}').toString();
    }
}
