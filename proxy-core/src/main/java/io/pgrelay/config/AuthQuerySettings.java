package io.pgrelay.config;

import java.time.Duration;

/**
 * PgBouncer's auth_query settings: secrets of users missing from auth_file are read from PostgreSQL
 * by running {@code query} ($1 = the user name) as {@code user} in {@code dbname}, and kept for
 * {@code cacheTime}.
 *
 * @param user auth_user; empty: auth_query is off
 * @param dbname auth_dbname; empty: the client's own database
 */
public record AuthQuerySettings(String user, String query, String dbname, Duration cacheTime) {

    public boolean enabled() {
        return !user.isEmpty();
    }

    /** The database the lookup for a client of {@code clientDatabase} runs in. */
    public String database(String clientDatabase) {
        return dbname.isEmpty() ? clientDatabase : dbname;
    }
}
