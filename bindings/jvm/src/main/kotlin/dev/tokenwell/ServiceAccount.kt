package dev.tokenwell

import dev.tokenwell.ffi.EngineCache
import dev.tokenwell.ffi.EngineConfig
import dev.tokenwell.ffi.EngineException
import dev.tokenwell.ffi.EngineRequest
import dev.tokenwell.ffi.EngineToken
import dev.tokenwell.ffi.PollOutcome
import dev.tokenwell.ffi.closedError
import dev.tokenwell.ffi.mergeEnv
import dev.tokenwell.ffi.readEnv
import dev.tokenwell.ffi.retryRequest
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.future.await
import kotlinx.coroutines.future.future
import kotlinx.coroutines.withTimeoutOrNull
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.nio.file.Path
import java.security.SecureRandom
import java.time.Clock
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Executors
import java.util.concurrent.ScheduledExecutorService
import java.util.concurrent.ScheduledFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock

/**
 * One event from the engine (`token_acquired`, `refresh_started`,
 * `refresh_failed`, `secret_fallback_used`, `backoff_scheduled`, ...), with
 * `actor_type` and `actor_id` for audit logs. [json] is the whole event,
 * `snake_case` keys, as every host delivers it; it never holds a secret.
 */
class TokenEvent internal constructor(
    /** The event's type. */
    val type: String,
    /** When it happened (ms since the Unix epoch). */
    val atMs: Long,
    /** The event as a JSON object. */
    val json: String,
) {
    override fun toString(): String = json
}

/**
 * An OAuth 2.0 client-credentials token for one client, always fresh.
 *
 * The engine (Rust, `core/`) decides everything: what to send, when to
 * refresh, whether to retry, what an error means. This class is the host: it
 * keeps the clock, sends the engine's requests with [java.net.http.HttpClient],
 * wakes the engine at its `next_wakeup()` on a daemon thread (refresh ahead),
 * re-reads a secret file when it changed, and makes callers share one fetch.
 *
 * Hot path: the current token and the engine's deadline are kept in one
 * volatile field; while the clock is before that deadline, [token] and
 * [getToken] return the token without calling native code.
 */
class ServiceAccount internal constructor(
    config: EngineConfig,
    private val secretFile: SecretFile?,
    private val httpClient: HttpClient,
    private val onEvent: ((TokenEvent) -> Unit)?,
    private val clock: Clock,
    entropy: Long,
    private val refreshWhenIdle: Boolean,
) : AutoCloseable {

    /**
     * A service account with its configuration given directly.
     *
     * @param tokenUrl the token endpoint (`https://`, or `http://` on loopback)
     * @param clientSecret the secrets, current first (the next is tried after `invalid_client`)
     * @param authMethod `client_secret_basic` (default) or `client_secret_post`
     * @param options any other engine option (`snake_case` name to a JSON value as
     *   text, e.g. `"refresh_margin_ms" to "5000"`)
     */
    @JvmOverloads
    constructor(
        tokenUrl: String,
        clientId: String,
        clientSecret: List<String>,
        scope: List<String> = emptyList(),
        audience: List<String> = emptyList(),
        authMethod: String? = null,
        options: Map<String, String> = emptyMap(),
        httpClient: HttpClient = defaultHttpClient(),
        onEvent: ((TokenEvent) -> Unit)? = null,
        clock: Clock = Clock.systemUTC(),
        refreshWhenIdle: Boolean = true,
    ) : this(
        configOf(
            Json.obj(
                "token_url" to Json.str(tokenUrl),
                "client_id" to Json.str(clientId),
                "client_secret" to Json.list(clientSecret),
                "scope" to Json.list(scope),
                "audience" to Json.list(audience),
                "auth_method" to authMethod?.let(Json::str),
            ) + options,
        ),
        null, httpClient, onEvent, clock, SecureRandom().nextLong(), refreshWhenIdle,
    )

    private val cache = EngineCache(config, entropy)
    private val clientId = cache.clientId()
    private val lock = ReentrantLock()

    /** The published token and until when it may be served without asking the engine. */
    private class Hot(val token: String, val deadlineMs: Long)

    @Volatile private var hot: Hot? = null

    /** Completed (and replaced) whenever a fetch ends: what waiting callers await. */
    private var fetchEnded = CompletableFuture<Unit>()
    private var closed = false
    private var timer: ScheduledFuture<*>? = null
    private var timerAt: Long? = null
    private val outbox = ArrayDeque<TokenEvent>()
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    /** The access token, fetching one if needed; single flight across coroutines and threads. */
    suspend fun token(): String {
        while (true) {
            val current = hot
            if (current != null && clock.millis() < current.deadlineMs) return current.token
            when (val step = step()) {
                is Step.Ready -> return step.token
                is Step.Fail -> throw step.error
                is Step.Wait -> withTimeoutOrNull(step.timeoutMs) { step.ended.await() }
            }
        }
    }

    /** The access token, blocking the calling thread (for Java). */
    fun getToken(): String {
        while (true) {
            val current = hot
            if (current != null && clock.millis() < current.deadlineMs) return current.token
            when (val step = step()) {
                is Step.Ready -> return step.token
                is Step.Fail -> throw step.error
                is Step.Wait -> try {
                    step.ended.get(step.timeoutMs, TimeUnit.MILLISECONDS)
                } catch (_: TimeoutException) {
                    // The engine's deadline passed while waiting: ask it again.
                }
            }
        }
    }

    /** The same as [getToken]. */
    fun tokenBlocking(): String = getToken()

    /** The access token as a future (for Java). */
    fun getTokenAsync(): CompletableFuture<String> = scope.future { token() }

    /**
     * Sends [request] with `Authorization: Bearer <token>` and reads the body as
     * a string; see the overload with a body handler.
     */
    fun send(request: HttpRequest): HttpResponse<String> = send(request, HttpResponse.BodyHandlers.ofString())

    /**
     * Sends [request] with `Authorization: Bearer <token>`. On a 401 the token is
     * invalidated and, when the engine's 401 rule allows, the request is sent
     * once more with the next token; that retry is never retried.
     */
    fun <T> send(request: HttpRequest, bodyHandler: HttpResponse.BodyHandler<T>): HttpResponse<T> {
        val token = getToken()
        val response = httpClient.send(withBearer(request, token), bodyHandler)
        if (response.statusCode() != 401) return response
        if (!retryRequest(invalidate(token))) return response
        return httpClient.send(withBearer(request, getToken()), bodyHandler)
    }

    /**
     * An API answered 401 for [accessToken]: drop it if it is still the current
     * one (rate-limited by the engine). Returns `invalidated`, `not_current` or `rate_limited`.
     */
    fun invalidate(accessToken: String): String {
        val outcome = lock.withLock {
            val outcome = ffi { cache.invalidate(accessToken, clock.millis()) }
            if (outcome == "invalidated") hot = null
            collectLocked()
            armLocked()
            outcome
        }
        dispatchEvents()
        return outcome
    }

    /** Replaces the client secrets (current first) without a restart; whether they changed. */
    fun replaceSecrets(secrets: List<String>): Boolean {
        val changed = lock.withLock {
            try {
                ffi { cache.replaceSecrets(secrets, clock.millis()) }
            } finally {
                collectLocked()
                hot = null
                armLocked()
            }
        }
        dispatchEvents()
        return changed
    }

    /** The cached token as snapshot JSON (holds the access token, never the secret), or `null`. */
    fun exportSnapshot(): String? = lock.withLock { ffi { cache.exportSnapshot(clock.millis()) } }

    /** Loads a snapshot exported earlier; throws [SnapshotException] when refused. */
    fun importSnapshot(snapshot: String) {
        lock.withLock {
            ffi { cache.importSnapshot(snapshot, clock.millis()) }
            hot = null
            collectLocked()
            armLocked()
        }
        dispatchEvents()
    }

    /** Stops refreshing; callers waiting and later calls get a [HostException] (`closed`). */
    override fun close() {
        lock.withLock {
            closed = true
            hot = null
            timer?.cancel(false)
            timer = null
            timerAt = null
            wakeWaitersLocked()
        }
        scope.cancel()
    }

    override fun toString(): String = "ServiceAccount(clientId=$clientId, state=${cache.state()})"

    // ---- one decision, under the lock ---------------------------------------------

    private sealed class Step {
        class Ready(val token: String) : Step()
        class Wait(val ended: CompletableFuture<Unit>, val timeoutMs: Long) : Step()
        class Fail(val error: RuntimeException) : Step()
    }

    private fun step(): Step {
        try {
            return lock.withLock {
                if (closed) return@withLock Step.Fail(TokenException.of(closedError()))
                val now = clock.millis()
                secretFile?.check(cache, now, forced = false)
                if (signsAssertions()) {
                    // Fresh OS randomness before a poll that may send (core's EntropyPool rule):
                    // every client assertion's jti is drawn from the pool.
                    cache.addEntropy(ByteArray(32).also(RANDOM::nextBytes))
                }
                when (val poll = ffi { cache.poll(now) }) {
                    is PollOutcome.Ready -> Step.Ready(publishLocked(poll.token))
                    is PollOutcome.ReadyAndSend -> {
                        val token = publishLocked(poll.token)
                        startFetchLocked(poll.request)
                        Step.Ready(token)
                    }
                    is PollOutcome.Send -> {
                        val ended = fetchEnded
                        startFetchLocked(poll.request)
                        Step.Wait(ended, waitTimeoutLocked(now))
                    }
                    is PollOutcome.Wait -> Step.Wait(fetchEnded, waitTimeoutLocked(now))
                    is PollOutcome.Fail -> {
                        hot = null
                        Step.Fail(TokenException.of(poll.error))
                    }
                }.also {
                    collectLocked()
                    armLocked()
                }
            }
        } finally {
            dispatchEvents()
        }
    }

    /** Whether a token request may carry a client assertion (with discovery, once the document was read). */
    private fun signsAssertions(): Boolean =
        cache.keyCount() > 0u || cache.authMethod().let { it == "private_key_jwt" || it == "client_secret_jwt" }

    /** How long a waiter waits before asking the engine again: until its next deadline, at most a minute. */
    private fun waitTimeoutLocked(now: Long): Long {
        val wake = cache.nextWakeup() ?: return 1000
        return (wake - now).coerceIn(1, 60_000)
    }

    private fun publishLocked(token: EngineToken): String {
        val value = token.accessToken()
        hot = Hot(value, deadlineLocked())
        return value
    }

    /** Until when the hot path may serve the published token: the engine's next wakeup, capped at the file check. */
    private fun deadlineLocked(): Long {
        if (closed) return 0
        var deadline = cache.nextWakeup() ?: 0
        if (secretFile != null) deadline = minOf(deadline, clock.millis() + secretFile.checkIntervalMs)
        return deadline
    }

    // ---- the transport ----------------------------------------------------------------

    private fun startFetchLocked(request: EngineRequest) {
        val sending = Transport.send(httpClient, request, cache.maxResponseBytes())
        sending.whenComplete { outcome, failure ->
            finish(request, outcome ?: Transport.Outcome.Failed("other", failure?.toString() ?: "no outcome"))
        }
    }

    private fun finish(request: EngineRequest, outcome: Transport.Outcome) {
        lock.withLock {
            val now = clock.millis()
            when (outcome) {
                is Transport.Outcome.Response -> try {
                    val token = ffi {
                        cache.handleResponse(request.fetchId(), outcome.status, outcome.headers, outcome.body, now)
                    }
                    publishLocked(token)
                } catch (error: CredentialsException) {
                    // The secret may have been rotated under us: look at the file now.
                    secretFile?.check(cache, now, forced = true)
                } catch (_: TokenException) {
                    // Classified and recorded by the engine; callers get it from their next poll.
                }
                is Transport.Outcome.Failed -> {
                    ffi { cache.handleTransportError(request.fetchId(), outcome.kind, outcome.message, now) }
                }
            }
            // The engine's deadline may have moved earlier (a retry time): never serve past it.
            hot?.let { current -> hot = Hot(current.token, minOf(current.deadlineMs, deadlineLocked())) }
            collectLocked()
            armLocked()
            wakeWaitersLocked()
        }
        request.destroy()
        dispatchEvents()
    }

    private fun wakeWaitersLocked() {
        val ended = fetchEnded
        fetchEnded = CompletableFuture()
        ended.complete(Unit)
    }

    // ---- refresh ahead: a daemon timer at the engine's next wakeup ----------------------

    private fun armLocked() {
        if (!refreshWhenIdle || closed) return
        val wake = cache.nextWakeup()
        if (wake == timerAt) return
        timer?.cancel(false)
        timerAt = wake
        timer = wake?.let {
            val delay = (it - clock.millis()).coerceAtLeast(0)
            TIMER.schedule({ onTimer(it) }, delay, TimeUnit.MILLISECONDS)
        }
    }

    private fun onTimer(at: Long) {
        lock.withLock {
            if (closed || timerAt != at) return
            timer = null
            timerAt = null
        }
        try {
            step() // starts whatever fetch the engine asks for; callers see the outcome
        } catch (_: RuntimeException) {
            // An error is the engine's to classify and an event to deliver; nobody waits here.
        }
    }

    // ---- events ---------------------------------------------------------------------

    private fun collectLocked() {
        for (event in cache.drainEvents()) outbox.addLast(TokenEvent(event.kind, event.at, event.json))
    }

    private fun dispatchEvents() {
        while (true) {
            val event = lock.withLock { outbox.removeFirstOrNull() } ?: return
            val handler = onEvent
            if (handler == null) {
                log(event)
                continue
            }
            try {
                handler(event)
            } catch (failure: RuntimeException) {
                // A failing handler must not break token acquisition.
                LOG.log(System.Logger.Level.WARNING, "tokenwell: onEvent handler threw", failure)
            }
        }
    }

    companion object {
        private val LOG: System.Logger = System.getLogger("tokenwell")
        private val RANDOM = SecureRandom()
        private val WARN = setOf(
            "refresh_failed", "secret_file_rejected", "outage_grace_served", "fetch_abandoned", "discovery_kept_cached",
        )

        /** One daemon thread for every account's refresh-ahead wakeups. */
        private val TIMER: ScheduledExecutorService = Executors.newSingleThreadScheduledExecutor { runnable ->
            Thread(runnable, "tokenwell-refresh").apply { isDaemon = true }
        }

        private fun log(event: TokenEvent) {
            val level = if (event.type in WARN) System.Logger.Level.WARNING else System.Logger.Level.DEBUG
            if (LOG.isLoggable(level)) LOG.log(level, "tokenwell {0} {1}", event.type, event.json)
        }

        /** An HTTP client that follows no redirects (the engine classifies a redirect). */
        @JvmStatic
        fun defaultHttpClient(): HttpClient =
            HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build()

        private fun configOf(options: Map<String, String?>): EngineConfig =
            ffi { EngineConfig.fromJson(Json.objOf(options)) }

        /**
         * An account configured from the environment, as every tokenwell host
         * reads it (core's `read_env` / `merge_env`): `CLIENT_ID`,
         * `CLIENT_SECRET` or `CLIENT_SECRET_FILE`, `TOKEN_URL` (or `HYDRA_URL` /
         * `ISSUER_URL`), `SCOPE`, `AUDIENCE`, each with [prefix]. Options given
         * in [explicit] (`snake_case` name to JSON text) win over the environment.
         * Missing or malformed values raise [InvalidConfigException] naming the variable.
         */
        @JvmStatic
        @JvmOverloads
        fun fromEnv(
            prefix: String = "",
            environment: Map<String, String> = System.getenv(),
            explicit: Map<String, String> = emptyMap(),
            clientSecretFile: String? = null,
            httpClient: HttpClient = defaultHttpClient(),
            onEvent: ((TokenEvent) -> Unit)? = null,
            clock: Clock = Clock.systemUTC(),
            refreshWhenIdle: Boolean = true,
        ): ServiceAccount {
            val merged = ffi {
                mergeEnv(Json.objOf(explicit), readEnv(prefix, environment), clientSecretFile, null)
            }
            ffi { merged.checkRequired() }
            val path = merged.secretFile()
            val source = merged.secretFileSource() ?: "CLIENT_SECRET_FILE"
            val contents = path?.let {
                try {
                    Files.readString(Path.of(it))
                } catch (failure: java.io.IOException) {
                    throw InvalidConfigException(source, "cannot be read (${failure.javaClass.simpleName})",
                        "invalid configuration: $source: cannot be read")
                }
            }
            val keyContents = merged.keyFile()?.let { Files.readString(Path.of(it)) }
            val config = ffi { merged.intoConfig(contents, keyContents) }
            val secretFile = path?.let { SecretFile(Path.of(it), source) }
            return ServiceAccount(config, secretFile, httpClient, onEvent, clock, SecureRandom().nextLong(), refreshWhenIdle)
        }

        /** A call into the engine, its errors as this package's exceptions. */
        internal inline fun <T> ffi(call: () -> T): T = try {
            call()
        } catch (error: EngineException) {
            throw TokenException.of(error)
        }

        private fun withBearer(request: HttpRequest, token: String): HttpRequest =
            HttpRequest.newBuilder(request) { name, _ -> !name.equals("Authorization", ignoreCase = true) }
                .header("Authorization", "Bearer $token")
                .build()
    }
}
