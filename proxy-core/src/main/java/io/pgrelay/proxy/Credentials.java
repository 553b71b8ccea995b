package io.pgrelay.proxy;

import io.pgrelay.auth.Secret;
import io.pgrelay.auth.UserList;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The auth_file's secrets, the secrets auth_query found for users missing from it, and the SCRAM
 * ClientKeys recovered from clients' proofs.
 *
 * <p>When pgrelay holds only a SCRAM secret for a user, it cannot compute a proof for the server by
 * itself; after a client logs in with SCRAM, its proof yields the ClientKey, which is enough to log
 * in to PostgreSQL as that user (PgBouncer does the same). A key is kept together with the secret
 * it was checked against, so a changed secret invalidates it.
 *
 * <p>A queried secret stays until the next lookup of its user says otherwise (or auth_query is
 * turned off), not just for auth_query_cache_time: server connections for the user may be opened
 * long after its client logged in, and need the secret then.
 */
final class Credentials {

    private record RecoveredKey(Secret.Scram secret, byte[] clientKey) {}

    private volatile UserList users;
    private final Map<String, Secret> queried = new ConcurrentHashMap<>();
    private final Map<String, RecoveredKey> clientKeys = new ConcurrentHashMap<>();

    Credentials(UserList users) {
        this.users = users;
    }

    /** The user's secret in auth_file, which wins over anything auth_query says. */
    Optional<Secret> listed(String user) {
        return users.secret(user);
    }

    /** The secret pgrelay logs in to PostgreSQL with: auth_file's, else auth_query's last. */
    Optional<Secret> secret(String user) {
        Optional<Secret> listed = users.secret(user);
        return listed.isPresent() ? listed : Optional.ofNullable(queried.get(user));
    }

    /** The users in auth_file. */
    Set<String> users() {
        return users.users();
    }

    void replace(UserList newUsers) {
        users = newUsers;
    }

    /** What auth_query answered for {@code user} now: its secret, or null (no such role). */
    void queried(String user, Secret secret) {
        if (secret == null) {
            queried.remove(user);
        } else {
            queried.put(user, secret);
        }
    }

    /** auth_query is off (or asks elsewhere now): its answers no longer count. */
    void forgetQueried() {
        queried.clear();
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
