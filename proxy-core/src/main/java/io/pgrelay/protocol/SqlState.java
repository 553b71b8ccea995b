package io.pgrelay.protocol;

/** The SQLSTATE codes pgrelay itself reports, named as in PostgreSQL's errcodes.txt. */
public final class SqlState {

    public static final String CONNECTION_FAILURE = "08006";
    public static final String CONNECTION_EXCEPTION = "08000";
    public static final String PROTOCOL_VIOLATION = "08P01";
    public static final String FEATURE_NOT_SUPPORTED = "0A000";
    public static final String INVALID_PASSWORD = "28P01";
    public static final String INVALID_AUTHORIZATION_SPECIFICATION = "28000";
    public static final String OUT_OF_MEMORY = "53200";
    public static final String TOO_MANY_CONNECTIONS = "53300";
    public static final String CONFIGURATION_LIMIT_EXCEEDED = "53400";
    public static final String QUERY_CANCELED = "57014";
    public static final String ADMIN_SHUTDOWN = "57P01";
    public static final String CANNOT_CONNECT_NOW = "57P03";
    public static final String IDLE_IN_TRANSACTION_SESSION_TIMEOUT = "25P03";
    public static final String INVALID_PARAMETER_VALUE = "22023";
    public static final String INTERNAL_ERROR = "XX000";
    public static final String INVALID_SQL_STATEMENT_NAME = "26000";
    public static final String DUPLICATE_PREPARED_STATEMENT = "42P05";
    public static final String OBJECT_NOT_IN_PREREQUISITE_STATE = "55000";
    public static final String INSUFFICIENT_PRIVILEGE = "42501";
    public static final String IDLE_SESSION_TIMEOUT = "57P05";

    private SqlState() {}
}
