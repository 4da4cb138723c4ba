package dev.tokenwell

import dev.tokenwell.ffi.EngineRequest
import java.io.IOException
import java.io.InputStream
import java.net.ConnectException
import java.net.http.HttpClient
import java.net.http.HttpConnectTimeoutException
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.net.http.HttpTimeoutException
import java.time.Duration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import javax.net.ssl.SSLException

/**
 * Sends the engine's requests with `java.net.http` and reports what happened,
 * as the engine takes it: a response (status, headers, at most one byte more
 * than the engine accepts) or a transport failure of a kind the engine knows
 * (`timeout`, `connect`, `tls`, `io`, `other`). No decision is made here.
 */
internal object Transport {
    sealed class Outcome {
        class Response(val status: Int, val headers: List<List<String>>, val body: ByteArray) : Outcome()
        class Failed(val kind: String, val message: String) : Outcome()
    }

    fun send(client: HttpClient, request: EngineRequest, maxResponseBytes: Long): CompletableFuture<Outcome> {
        val timeoutMs = request.timeoutMs()
        val http = try {
            val builder = HttpRequest.newBuilder(java.net.URI.create(request.url())).timeout(Duration.ofMillis(timeoutMs))
            for ((name, value) in request.headers()) builder.header(name, value)
            if (request.method() == "GET") builder.GET()
            else builder.method(request.method(), HttpRequest.BodyPublishers.ofString(request.body()))
            builder.build()
        } catch (bad: IllegalArgumentException) {
            return CompletableFuture.completedFuture(Outcome.Failed("other", "the request could not be built: ${bad.message}"))
        }
        // The whole exchange, body included, ends within the engine's timeout:
        // a body that never ends is a timeout, not a hung thread.
        var stream: InputStream? = null
        return client.sendAsync(http, HttpResponse.BodyHandlers.ofInputStream())
            .thenApplyAsync { response ->
                stream = response.body()
                val body = response.body().use { it.readNBytes((maxResponseBytes + 1).coerceAtMost(Int.MAX_VALUE.toLong()).toInt()) }
                val headers = response.headers().map().flatMap { (name, values) -> values.map { listOf(name, it) } }
                Outcome.Response(response.statusCode(), headers, body) as Outcome
            }
            .orTimeout(timeoutMs, TimeUnit.MILLISECONDS)
            .exceptionally { failure ->
                stream?.let { runCatching { it.close() } }
                failed(if (failure is CompletionException && failure.cause != null) failure.cause!! else failure)
            }
    }

    private fun failed(failure: Throwable): Outcome {
        val kind = when (failure) {
            is HttpConnectTimeoutException, is HttpTimeoutException, is TimeoutException -> "timeout"
            is ConnectException -> "connect"
            is SSLException -> "tls"
            is IOException -> "io"
            else -> "other"
        }
        return Outcome.Failed(kind, failure.javaClass.simpleName + (failure.message?.let { ": $it" } ?: ""))
    }
}
