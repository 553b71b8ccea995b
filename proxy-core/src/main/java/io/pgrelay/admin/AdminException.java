package io.pgrelay.admin;

/**
 * A console command that failed: reported to the client as an ErrorResponse, the session goes on.
 */
final class AdminException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    static final String SYNTAX_ERROR = "42601";
    static final String INSUFFICIENT_PRIVILEGE = "42501";
    static final String OBJECT_NOT_IN_PREREQUISITE_STATE = "55000";
    static final String INVALID_PARAMETER_VALUE = "22023";
    static final String DUPLICATE_PREPARED_STATEMENT = "42P05";
    static final String DUPLICATE_CURSOR = "42P03";
    static final String INVALID_SQL_STATEMENT_NAME = "26000";
    static final String INVALID_CURSOR_NAME = "34000";

    private final String sqlState;

    AdminException(String sqlState, String message) {
        super(message, null, false, false);
        this.sqlState = sqlState;
    }

    /** PgBouncer's answer to anything it cannot parse. */
    static AdminException invalidCommand(String statement) {
        return new AdminException(
                SYNTAX_ERROR, "invalid command '" + statement + "', use SHOW HELP;");
    }

    String sqlState() {
        return sqlState;
    }
}
