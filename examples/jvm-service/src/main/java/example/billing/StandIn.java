package example.billing;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A stand-in token endpoint and billing API on 127.0.0.1, started when no
 * authorization server is configured (TOKEN_URL etc. unset), so the examples run
 * anywhere. Not an authorization server: it accepts any credentials. It counts
 * token requests, and its API answers 401 to a bearer token it did not issue.
 */
public final class StandIn implements AutoCloseable {
    private final HttpServer server;
    private final AtomicInteger tokenRequests = new AtomicInteger();
    private final AtomicInteger apiCalls = new AtomicInteger();

    public StandIn() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/oauth2/token", exchange -> {
            exchange.getRequestBody().readAllBytes();
            int n = tokenRequests.incrementAndGet();
            try {
                Thread.sleep(200); // a slow server: concurrent callers overlap with the one fetch
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            respond(exchange, 200, "{\"access_token\":\"stand-in-token-" + n
                + "\",\"token_type\":\"Bearer\",\"expires_in\":3600,\"scope\":\"billing:read\"}");
        });
        server.createContext("/api/invoices", exchange -> {
            String auth = exchange.getRequestHeaders().getFirst("Authorization");
            if (auth == null || !auth.startsWith("Bearer stand-in-token-")) {
                respond(exchange, 401, "{\"error\":\"invalid_token\"}");
                return;
            }
            int n = apiCalls.incrementAndGet();
            respond(exchange, 200, "{\"invoices\":[],\"call\":" + n + "}");
        });
        server.start();
    }

    private static void respond(com.sun.net.httpserver.HttpExchange exchange, int status, String json) throws IOException {
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, body.length);
        exchange.getResponseBody().write(body);
        exchange.close();
    }

    private String base() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    /** The environment ServiceAccount.fromEnv reads, pointing at this server. */
    public Map<String, String> environment() {
        return Map.of(
            "CLIENT_ID", "billing-worker",
            "CLIENT_SECRET", "demo-secret",
            "TOKEN_URL", base() + "/oauth2/token",
            "SCOPE", "billing:read");
    }

    /** The stand-in billing API. */
    public String apiUrl() {
        return base() + "/api/invoices";
    }

    public int tokenRequests() {
        return tokenRequests.get();
    }

    /** Whether no authorization server is configured in [env]: then the examples use a stand-in. */
    public static boolean wanted(Map<String, String> env) {
        for (String name : new String[] {"TOKEN_URL", "HYDRA_URL", "ISSUER_URL", "CLIENT_ID", "CLIENT_SECRET", "CLIENT_SECRET_FILE"}) {
            String value = env.get(name);
            if (value != null && !value.isBlank()) return false;
        }
        return true;
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
