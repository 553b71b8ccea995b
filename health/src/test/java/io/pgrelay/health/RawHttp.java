package io.pgrelay.health;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * A client on a plain socket, for what HttpClient will not do: stall, pipeline, send oversized
 * heads.
 */
final class RawHttp implements AutoCloseable {

    /** One response; header names lower-cased. */
    record Response(int status, Map<String, String> headers, String body) {}

    final Socket socket;

    RawHttp(int port) throws IOException {
        socket = new Socket();
        socket.connect(new InetSocketAddress("127.0.0.1", port), 5000);
        // Generous: a test that hits it fails on the timeout instead of hanging.
        socket.setSoTimeout(5000);
    }

    RawHttp send(String text) throws IOException {
        socket.getOutputStream().write(text.getBytes(StandardCharsets.ISO_8859_1));
        socket.getOutputStream().flush();
        return this;
    }

    static String get(String path) {
        return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    }

    /** Reads one response with a Content-Length body (HEAD: {@code withBody} false). */
    Response read(boolean withBody) throws IOException {
        InputStream in = socket.getInputStream();
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
                throw new EOFException(
                        "connection closed after " + head.size() + " bytes of a response head");
            }
            head.write(b);
        }
        String[] lines = head.toString(StandardCharsets.ISO_8859_1).split("\r\n");
        int status = Integer.parseInt(lines[0].split(" ")[1]);
        Map<String, String> headers = new TreeMap<>();
        for (int i = 1; i < lines.length; i++) {
            int colon = lines[i].indexOf(':');
            headers.put(
                    lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT),
                    lines[i].substring(colon + 1).trim());
        }
        int length = withBody ? Integer.parseInt(headers.getOrDefault("content-length", "0")) : 0;
        byte[] body = in.readNBytes(length);
        if (body.length < length) {
            throw new EOFException(
                    "connection closed after " + body.length + " of " + length + " body bytes");
        }
        return new Response(status, headers, new String(body, StandardCharsets.UTF_8));
    }

    Response read() throws IOException {
        return read(true);
    }

    /**
     * True when the server closed the connection (EOF or reset) before the socket timeout; false
     * when it is still open. Bytes the server sent before closing are skipped.
     */
    boolean closedByServer() throws IOException {
        try {
            InputStream in = socket.getInputStream();
            while (in.read() >= 0) {
                // skip what came before the close
            }
            return true;
        } catch (java.net.SocketTimeoutException e) {
            return false;
        } catch (java.net.SocketException e) {
            return true; // reset
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
