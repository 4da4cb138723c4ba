package example.billing;

import dev.tokenwell.ConfigurationException;
import dev.tokenwell.CredentialsException;
import dev.tokenwell.InvalidConfigException;
import dev.tokenwell.ServiceAccount;
import dev.tokenwell.TokenException;
import dev.tokenwell.TransientException;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A nightly billing job in plain Java: tokenwell's blocking {@code getToken()}
 * from a thread pool and {@code getTokenAsync()} futures (one token request for
 * all of them), then a few API calls with {@code send()}.
 *
 * <p>Configuration as every tokenwell host reads it: CLIENT_ID, CLIENT_SECRET
 * (or CLIENT_SECRET_FILE), TOKEN_URL (or HYDRA_URL / ISSUER_URL), SCOPE,
 * AUDIENCE; API_URL is the API to call. With none set it uses a stand-in
 * server on 127.0.0.1. Exit codes: 0 ok; 75 transient (retry later); 1 the
 * credentials, configuration or API must be fixed; 78 incomplete environment.
 */
public final class BillingJob {
    static final int EX_TEMPFAIL = 75;
    static final int EX_CONFIG = 78;

    public static void main(String[] args) {
        System.exit(run());
    }

    static int run() {
        Map<String, String> env = System.getenv();
        StandIn standIn = null;
        String apiUrl = blankToNull(env.get("API_URL"));
        try {
            if (StandIn.wanted(env)) {
                standIn = new StandIn();
                env = standIn.environment();
                if (apiUrl == null) apiUrl = standIn.apiUrl();
                log("no TOKEN_URL/CLIENT_ID/CLIENT_SECRET set: using a stand-in token server at " + env.get("TOKEN_URL"));
            } else {
                log("using the authorization server at "
                    + firstNonNull(env.get("TOKEN_URL"), env.get("HYDRA_URL"), env.get("ISSUER_URL")));
            }
        } catch (java.io.IOException e) {
            log("cannot start the stand-in server: " + e);
            return 1;
        }
        ServiceAccount account;
        try {
            account = ServiceAccount.fromEnv("", env);
        } catch (InvalidConfigException e) {
            log("incomplete environment: " + e.getMessage());
            return EX_CONFIG;
        }
        try (account) {
            // Eight threads and eight futures ask at once: one token request.
            ExecutorService pool = Executors.newFixedThreadPool(8);
            List<Future<String>> blocking = new ArrayList<>();
            List<CompletableFuture<String>> async = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                blocking.add(pool.submit(account::getToken));
                async.add(account.getTokenAsync());
            }
            String first = null;
            for (Future<String> f : blocking) first = same(first, unwrap(f));
            for (CompletableFuture<String> f : async) first = same(first, unwrap(f));
            pool.shutdown();
            log("16 concurrent callers (8 getToken, 8 getTokenAsync) got the same token: " + describe(first));
            if (standIn != null) log(standIn.tokenRequests() + " token request(s) made");

            if (apiUrl == null) {
                log("no API_URL set: not calling an API");
            } else {
                for (int n = 1; n <= 3; n++) {
                    HttpRequest request = HttpRequest.newBuilder(URI.create(apiUrl))
                        .header("Accept", "application/json").timeout(Duration.ofSeconds(10)).GET().build();
                    HttpResponse<String> response = account.send(request, HttpResponse.BodyHandlers.ofString());
                    log("call " + n + ": " + apiUrl + " answered " + response.statusCode());
                    if (response.statusCode() / 100 != 2) return 1;
                }
            }
            log("done");
            return 0;
        } catch (TransientException e) {
            log("token error, transient [" + e.getKind() + "] (retry later): " + e.getMessage());
            return EX_TEMPFAIL;
        } catch (CredentialsException | ConfigurationException e) {
            log("token error [" + e.getKind() + "] (fix the credentials or configuration): " + e.getMessage());
            return 1;
        } catch (TokenException e) {
            log("token error [" + e.getKind() + "]: " + e.getMessage());
            return e.getRetryable() ? EX_TEMPFAIL : 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        } catch (Exception e) {
            // send() declares no checked exception (Kotlin), but java.net.http throws IOException.
            if (!(e instanceof java.io.IOException)) throw e;
            log("API call failed: " + e);
            return EX_TEMPFAIL;
        } finally {
            if (standIn != null) standIn.close();
        }
    }

    /** A future's value, its failure rethrown as the TokenException it is. */
    private static String unwrap(Future<String> future) throws InterruptedException {
        try {
            return future.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException) throw (RuntimeException) e.getCause();
            throw new IllegalStateException(e.getCause());
        }
    }

    private static String same(String previous, String token) {
        if (previous != null && !previous.equals(token)) throw new IllegalStateException("callers got different tokens");
        return token;
    }

    /** Never the token itself: its first characters and its length. */
    static String describe(String token) {
        return token.substring(0, Math.min(8, token.length())) + "... (" + token.length() + " chars)";
    }

    private static String blankToNull(String value) {
        return value == null || value.isBlank() ? null : value.trim();
    }

    private static String firstNonNull(String... values) {
        for (String v : values) if (v != null && !v.isBlank()) return v;
        return "?";
    }

    private static void log(String message) {
        System.out.println("billing-job: " + message);
    }
}
