package io.pgrelay.proxy;

import io.pgrelay.auth.ScramClient;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Logs a raw socket in with SCRAM-SHA-256, for tests that speak the protocol by hand. */
final class ScramLogin {

    private ScramLogin() {}

    static void login(Socket s, String user, String password, String database) throws IOException {
        login(s, user, password, database, Map.of());
    }

    /**
     * Logs in with these extra startup parameters.
     *
     * @return the ParameterStatus values the server greeted with
     */
    /**
     * The BackendKeyData ("processId secretKey") in the returned map: a name no ParameterStatus can
     * have.
     */
    static final String BACKEND_KEY = "(BackendKeyData)";

    static Map<String, String> login(
            Socket s, String user, String password, String database, Map<String, String> extra)
            throws IOException {
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        DataInputStream in = new DataInputStream(s.getInputStream());
        List<String> startup = new ArrayList<>(List.of("user", user, "database", database));
        extra.forEach(
                (k, v) -> {
                    startup.add(k);
                    startup.add(v);
                });
        out.write(RawClient.startupPacket(3 << 16, startup.toArray(String[]::new)));
        out.flush();
        Map<String, String> reported = new LinkedHashMap<>();
        ScramClient scram = ScramClient.withPassword(password);
        while (true) {
            char type = (char) in.readUnsignedByte();
            byte[] body = new byte[in.readInt() - 4];
            in.readFully(body);
            if (type == 'E') {
                throw new IOException("login failed: " + new String(body, StandardCharsets.UTF_8));
            }
            if (type == 'Z') {
                return reported;
            }
            if (type == 'S') {
                String[] nameValue = new String(body, StandardCharsets.UTF_8).split("\0", -1);
                reported.put(nameValue[0], nameValue[1]);
            }
            if (type == 'K') {
                ByteBuffer key = ByteBuffer.wrap(body);
                reported.put(BACKEND_KEY, key.getInt() + " " + key.getInt());
            }
            if (type != 'R') {
                continue;
            }
            int code = ByteBuffer.wrap(body).getInt();
            answer(out, scram, code, new String(body, 4, body.length - 4, StandardCharsets.UTF_8));
        }
    }

    /**
     * Answers Authentication request {@code code} ({@code data}: what follows the code) for {@code
     * scram}: SASLInitialResponse to 10, SASLResponse to 11, and 12's server signature checked.
     * False for any other request, which gets no answer.
     */
    static boolean answer(DataOutputStream out, ScramClient scram, int code, String data)
            throws IOException {
        if (code == 10) {
            byte[] first = scram.clientFirst().getBytes(StandardCharsets.UTF_8);
            byte[] mech = "SCRAM-SHA-256".getBytes(StandardCharsets.UTF_8);
            out.writeByte('p');
            out.writeInt(4 + mech.length + 1 + 4 + first.length);
            out.write(mech);
            out.writeByte(0);
            out.writeInt(first.length);
            out.write(first);
        } else if (code == 11) {
            byte[] fin = scram.clientFinal(data).getBytes(StandardCharsets.UTF_8);
            out.writeByte('p');
            out.writeInt(4 + fin.length);
            out.write(fin);
        } else if (code == 12) {
            scram.verifyServerFinal(data);
            return true;
        } else {
            return false;
        }
        out.flush();
        return true;
    }
}
