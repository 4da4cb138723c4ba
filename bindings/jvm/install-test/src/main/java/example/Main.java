package example;

import com.sun.net.httpserver.HttpServer;
import dev.tokenwell.ServiceAccount;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/** Gets a token from Java with only the jar on the class path (a token server on 127.0.0.1). */
public final class Main {
    public static void main(String[] args) throws Exception {
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/oauth2/token", exchange -> {
            byte[] body = "{\"access_token\":\"installed-token\",\"token_type\":\"Bearer\",\"expires_in\":300}"
                .getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().add("Content-Type", "application/json");
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.start();
        String url = "http://127.0.0.1:" + server.getAddress().getPort() + "/oauth2/token";
        try (ServiceAccount account = ServiceAccount.fromEnv(
                "APP_", Map.of("APP_CLIENT_ID", "java-client", "APP_CLIENT_SECRET", "s3cr3t", "APP_TOKEN_URL", url))) {
            String token = account.getToken();
            String async = account.getTokenAsync().get();
            if (!token.equals("installed-token") || !async.equals(token)) throw new AssertionError(token);
            System.out.println("install test: got a token from the installed jar with no Rust on PATH");
        } finally {
            server.stop(0);
        }
    }
}
