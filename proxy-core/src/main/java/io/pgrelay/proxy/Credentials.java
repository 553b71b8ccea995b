package io.pgrelay.proxy;

import io.pgrelay.auth.Secret;
import io.pgrelay.auth.UserList;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The auth_file's secrets, plus the SCRAM ClientKeys recovered from clients' proofs.
 *
 * <p>When the auth_file holds only a SCRAM secret, pgrelay cannot compute a proof for the server by
 * itself; after a client logs in with SCRAM, its proof yields the ClientKey, which is enough to log
 * in to PostgreSQL as that user (PgBouncer does the same). A key is kept together with the secret
 * it was checked against, so a changed secret invalidates it.
 */
final class Credentials {

    private record RecoveredKey(Secret.Scram secret, byte[] clientKey) {}

    private volatile UserList users;
    private final Map<String, RecoveredKey> clientKeys = new ConcurrentHashMap<>();

    Credentials(UserList users) {
        this.users = users;
    }

    Optional<Secret> secret(String user) {
        return users.secret(user);
    }

    Set<String> users() {
        return users.users();
    }

    void replace(UserList newUsers) {
        users = newUsers;
    }

    void rememberClientKey(String user, Secret.Scram secret, byte[] clientKey) {
        clientKeys.put(user, new RecoveredKey(secret, clientKey.clone()));
    }

    /** The ClientKey recovered for {@code user} under exactly this secret, or null. */
    byte[] clientKey(String user, Secret.Scram secret) {
        RecoveredKey k = clientKeys.get(user);
        if (k == null || !k.secret().equals(secret)) {
            return null;
        }
        return Arrays.copyOf(k.clientKey(), k.clientKey().length);
    }
}
