package io.pgrelay.routing;

/** What a client connection is for, decided by the port it came in on. */
public enum Role {
    /** The write port: the primary, and only once it is known to be writable. */
    PRIMARY,
    /** The read port: a replica, or the primary when no replica is eligible. */
    REPLICA;

    public String label() {
        return this == PRIMARY ? "primary" : "replica";
    }
}
