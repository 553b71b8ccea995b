package io.pgrelay.proxy;

import io.pgrelay.auth.ScramClient;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
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
    static Map<String, String> login(
            Socket s, String user, String password, String database, Map<String, String> extra)
            throws IOException {
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        DataInputStream in = new DataInputStream(s.getInputStream());
        ByteArrayOutputStream params = new ByteArrayOutputStream();
        Map<String, String> startup = new LinkedHashMap<>();
        startup.put("user", user);
        startup.put("database", database);
        startup.putAll(extra);
        for (Map.Entry<String, String> e : startup.entrySet()) {
            params.writeBytes(e.getKey().getBytes(StandardCharsets.UTF_8));
            params.write(0);
            params.writeBytes(e.getValue().getBytes(StandardCharsets.UTF_8));
            params.write(0);
        }
        params.write(0);
        Map<String, String> reported = new LinkedHashMap<>();
        out.writeInt(8 + params.size());
        out.writeInt(3 << 16);
        out.write(params.toByteArray());
        out.flush();
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
            if (type != 'R') {
                continue;
            }
            int code =
                    ((body[0] & 0xff) << 24)
                            | ((body[1] & 0xff) << 16)
                            | ((body[2] & 0xff) << 8)
                            | (body[3] & 0xff);
            String data = new String(body, 4, body.length - 4, StandardCharsets.UTF_8);
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
            }
            out.flush();
        }
    }
}
