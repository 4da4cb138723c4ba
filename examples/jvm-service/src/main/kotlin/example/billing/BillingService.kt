// A billing service in Kotlin: coroutines share one token (single flight), and
// API calls carry it through ServiceAccount.send (401: invalidate, retry once).
//
// Configuration as every tokenwell host reads it (ServiceAccount.fromEnv):
// CLIENT_ID, CLIENT_SECRET (or CLIENT_SECRET_FILE), TOKEN_URL (or HYDRA_URL /
// ISSUER_URL), SCOPE, AUDIENCE; API_URL is the API to call (without it the
// service only gets a token). With none of them set it starts a stand-in token
// server and API on 127.0.0.1, so it runs anywhere.
//
// Exit codes, as examples/node-worker: 0 ok; 75 a transient token error (retry
// later); 1 the credentials, configuration or API must be fixed; 78 an
// incomplete environment.
package example.billing

import dev.tokenwell.ConfigurationException
import dev.tokenwell.CredentialsException
import dev.tokenwell.InvalidConfigException
import dev.tokenwell.ServiceAccount
import dev.tokenwell.TokenEvent
import dev.tokenwell.TokenException
import dev.tokenwell.TransientException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import java.net.URI
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import kotlin.system.exitProcess

private const val EX_TEMPFAIL = 75
private const val EX_CONFIG = 78

private fun log(message: String) = println("billing-service: $message")

/** Events worth a line; an event never holds a secret or a token. */
private fun onEvent(event: TokenEvent) {
    if (event.type in setOf("token_acquired", "refresh_failed", "secret_fallback_used", "backoff_scheduled")) {
        log("event ${event.type}")
    }
}

fun main() {
    exitProcess(runBlocking { run() })
}

suspend fun run(): Int {
    var env: Map<String, String> = System.getenv()
    var apiUrl = env["API_URL"]?.trim()?.ifEmpty { null }
    val standIn = if (StandIn.wanted(env)) StandIn() else null
    if (standIn != null) {
        env = standIn.environment()
        apiUrl = apiUrl ?: standIn.apiUrl()
        log("no TOKEN_URL/CLIENT_ID/CLIENT_SECRET set: using a stand-in token server at ${env["TOKEN_URL"]}")
    } else {
        log("using the authorization server at ${env["TOKEN_URL"] ?: env["HYDRA_URL"] ?: env["ISSUER_URL"]}")
    }
    try {
        val account = try {
            ServiceAccount.fromEnv(environment = env, onEvent = ::onEvent)
        } catch (e: InvalidConfigException) {
            log("incomplete environment: ${e.message}")
            return EX_CONFIG
        }
        account.use { return serve(account, apiUrl, standIn) }
    } finally {
        standIn?.close()
    }
}

private suspend fun serve(account: ServiceAccount, apiUrl: String?, standIn: StandIn?): Int = try {
    // Twenty coroutines ask at once: one token request, every caller gets its token.
    val tokens = coroutineScopeTokens(account, 20)
    check(tokens.toSet().size == 1) { "callers got different tokens" }
    log("20 concurrent coroutines got the same token: ${describe(tokens.first())}")
    standIn?.let { log("${it.tokenRequests()} token request(s) made") }

    if (apiUrl == null) {
        log("no API_URL set: not calling an API")
        log("done")
        0
    } else {
        var code = 0
        for (n in 1..3) {
            val request = HttpRequest.newBuilder(URI.create(apiUrl))
                .header("Accept", "application/json").timeout(Duration.ofSeconds(10)).GET().build()
            // send() blocks (java.net.http): keep it off the caller's dispatcher.
            val response = withContext(Dispatchers.IO) { account.send(request, HttpResponse.BodyHandlers.ofString()) }
            log("call $n: $apiUrl answered ${response.statusCode()}")
            if (response.statusCode() / 100 != 2) {
                code = 1
                break
            }
        }
        if (code == 0) log("done")
        code
    }
} catch (e: TransientException) {
    log("token error, transient [${e.kind}] (retry later): ${e.message}")
    EX_TEMPFAIL
} catch (e: CredentialsException) {
    log("token error [${e.kind}] (fix the credentials): ${e.message}")
    1
} catch (e: ConfigurationException) {
    log("token error [${e.kind}] (fix the configuration): ${e.message}")
    1
} catch (e: TokenException) {
    log("token error [${e.kind}]: ${e.message}")
    if (e.retryable) EX_TEMPFAIL else 1
} catch (e: java.io.IOException) {
    log("API call failed: $e")
    EX_TEMPFAIL
}

private suspend fun coroutineScopeTokens(account: ServiceAccount, n: Int): List<String> =
    kotlinx.coroutines.coroutineScope {
        (1..n).map { async(Dispatchers.Default) { account.token() } }.awaitAll()
    }

/** Never the token itself: its first characters and its length. */
private fun describe(token: String) = "${token.take(8)}... (${token.length} chars)"
