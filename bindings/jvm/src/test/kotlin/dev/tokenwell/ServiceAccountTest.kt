package dev.tokenwell

import dev.tokenwell.ffi.errorKinds
import dev.tokenwell.ffi.makeTokenError
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.nio.file.Files
import java.nio.file.StandardCopyOption
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread

/** The Kotlin host against a scripted token server on 127.0.0.1 (loopback only). */
class ServiceAccountTest {
    private fun account(
        server: TokenServer,
        clock: TestClock = TestClock(),
        events: MutableList<TokenEvent>? = null,
        idle: Boolean = false,
        secrets: List<String> = listOf("s3cr3t"),
    ) = ServiceAccount(
        tokenUrl = server.tokenUrl,
        clientId = "billing-worker",
        clientSecret = secrets,
        scope = listOf("billing:read"),
        clock = clock,
        refreshWhenIdle = idle,
        onEvent = events?.let { list -> { e: TokenEvent -> list.add(e) } },
    )

    /** 1000 coroutines and 200 threads at once; returns every token they got, and the failures. */
    private fun stampede(account: ServiceAccount, before: () -> Unit = {}): Pair<List<String>, Int> {
        val tokens = Collections.synchronizedList(ArrayList<String>())
        val failures = AtomicInteger()
        val gate = CountDownLatch(1)
        val started = CountDownLatch(200)
        val threads = (1..200).map {
            thread(name = "caller-$it") {
                started.countDown()
                gate.await()
                try {
                    tokens.add(account.getToken())
                } catch (_: TokenException) {
                    failures.incrementAndGet()
                }
            }
        }
        started.await()
        runBlocking {
            val open = CompletableDeferred<Unit>()
            val callers = (1..1000).map {
                async(Dispatchers.Default) {
                    open.await()
                    try {
                        tokens.add(account.token())
                    } catch (_: TokenException) {
                        failures.incrementAndGet()
                    }
                }
            }
            before()
            open.complete(Unit)
            gate.countDown()
            callers.awaitAll()
        }
        threads.forEach { it.join() }
        return tokens to failures.get()
    }

    @Test
    fun `a cold start stampede makes one token request`() {
        TokenServer().use { server ->
            val hold = CountDownLatch(1)
            server.hold = hold
            account(server).use { account ->
                // The server answers only once every caller was let go: they all meet the one fetch.
                val (tokens, failures) = stampede(account) { thread { hold.countDown() } }
                assertEquals(0, failures)
                assertEquals(1200, tokens.size)
                assertEquals(setOf("token-1"), tokens.toSet())
                assertEquals(1, server.requests.get())
                println("stampede cold start: 1000 coroutines + 200 threads -> ${server.requests.get()} token request")
            }
        }
    }

    @Test
    fun `a stampede at the refresh point makes one token request and nobody waits`() {
        TokenServer().use { server ->
            val clock = TestClock()
            val acquired = CountDownLatch(2)
            val events = Collections.synchronizedList(ArrayList<TokenEvent>())
            val account = ServiceAccount(
                tokenUrl = server.tokenUrl, clientId = "c", clientSecret = listOf("s"), clock = clock,
                refreshWhenIdle = false,
                onEvent = { e -> events.add(e); if (e.type == "token_acquired") acquired.countDown() },
            )
            account.use {
                assertEquals("token-1", account.getToken())
                clock.advance(3540_000) // past refresh-ahead (~75 %), before the margin
                val hold = CountDownLatch(1)
                server.hold = hold
                val (tokens, failures) = stampede(account)
                // Every caller was served the cached token while the refresh was held.
                assertEquals(0, failures)
                assertEquals(setOf("token-1"), tokens.toSet())
                hold.countDown()
                assertTrue(acquired.await(30, TimeUnit.SECONDS))
                assertEquals(2, server.requests.get())
                assertEquals("token-2", account.getToken())
                println("stampede at the refresh point: 1200 callers -> 1 token request (2 in all)")
            }
        }
    }

    @Test
    fun `an outage inside the margin serves the cached token with no failure`() {
        TokenServer().use { server ->
            val clock = TestClock()
            val failed = CountDownLatch(1)
            val account = ServiceAccount(
                tokenUrl = server.tokenUrl, clientId = "c", clientSecret = listOf("s"), clock = clock,
                refreshWhenIdle = false,
                onEvent = { e -> if (e.type == "refresh_failed") failed.countDown() },
            )
            account.use {
                assertEquals("token-1", account.getToken())
                server.answer = { TokenServer.Answer(503, """{"error":"temporarily_unavailable"}""") }
                clock.advance(3000_000) // past refresh-ahead: a background refresh meets the outage
                assertEquals("token-1", account.getToken())
                assertTrue(failed.await(30, TimeUnit.SECONDS))
                clock.advance(580_000) // inside the 30 s margin, before expiry
                val (tokens, failures) = stampede(account)
                assertEquals(0, failures)
                assertEquals(setOf("token-1"), tokens.toSet())
                println("outage inside the margin: 1200 calls, $failures failures, ${server.requests.get() - 1} refresh attempts")
            }
        }
    }

    @Test
    fun `refresh ahead happens in the background at the engine's wakeup`() {
        TokenServer().use { server ->
            server.expiresIn = 4 // refresh at ~3 s of real time
            val acquired = CountDownLatch(2)
            ServiceAccount(
                tokenUrl = server.tokenUrl, clientId = "c", clientSecret = listOf("s"),
                onEvent = { e -> if (e.type == "token_acquired") acquired.countDown() },
            ).use { account ->
                assertEquals("token-1", account.getToken())
                assertTrue(acquired.await(30, TimeUnit.SECONDS), "no background refresh")
                assertEquals(2, server.requests.get())
                assertEquals("token-2", account.getToken())
            }
        }
    }

    @Test
    fun `errors are typed by fault and carry the engine's fields`() {
        TokenServer().use { server ->
            server.answer = { TokenServer.Answer(401, """{"error":"invalid_client","error_description":"bad secret"}""") }
            account(server).use { account ->
                val error = assertThrows(CredentialsException::class.java) { account.getToken() }
                assertEquals("invalid_client", error.kind)
                assertEquals(Fault.CREDENTIALS, error.fault)
                assertEquals(401, error.status)
                assertEquals("invalid_client", error.oauthError)
                assertFalse(error.toString().contains("s3cr3t"))
            }
        }
        TokenServer().use { server ->
            server.answer = { TokenServer.Answer(503, "<html>down</html>") }
            account(server).use { account ->
                val error = assertThrows(TokenException::class.java) { account.getToken() }
                assertTrue(error.retryable)
                assertTrue(error.retryAtMs != null)
            }
        }
    }

    @Test
    fun `every engine error kind maps to the class of its fault`() {
        for (kind in errorKinds()) {
            val fault = Fault.of(kind.fault)
            assertTrue(fault != null, "fault ${kind.fault} of ${kind.kind} has no Kotlin value")
            val error = TokenException.of(makeTokenError(kind.kind, "d"))
            val expected = when (fault!!) {
                Fault.CONFIGURATION -> ConfigurationException::class
                Fault.CREDENTIALS -> CredentialsException::class
                Fault.AUTHORIZATION_SERVER, Fault.TRANSPORT -> TransientException::class
                Fault.MALFORMED_RESPONSE -> MalformedResponseException::class
                Fault.HOST -> HostException::class
            }
            assertTrue(expected.isInstance(error), "${kind.kind}: ${error.javaClass}")
            assertEquals(kind.retryable, error.retryable)
        }
    }

    @Test
    fun `a bad configuration names the field`() {
        val error = assertThrows(InvalidConfigException::class.java) {
            ServiceAccount(tokenUrl = "not a url", clientId = "c", clientSecret = listOf("hunter2-secret"))
        }
        assertEquals("token_url", error.field)
        assertFalse(error.toString().contains("hunter2-secret"))
    }

    @Test
    fun `fromEnv reads the variables every host reads and names what is missing`() {
        val error = assertThrows(InvalidConfigException::class.java) {
            ServiceAccount.fromEnv("BILLING_", mapOf("BILLING_CLIENT_ID" to "c"))
        }
        assertEquals("BILLING_TOKEN_URL", error.field)
        TokenServer().use { server ->
            ServiceAccount.fromEnv(
                "BILLING_",
                mapOf("BILLING_CLIENT_ID" to "c", "BILLING_CLIENT_SECRET" to "s", "BILLING_TOKEN_URL" to server.tokenUrl),
                refreshWhenIdle = false,
            ).use { assertEquals("token-1", it.getToken()) }
        }
    }

    @Test
    fun `a rotated secret file is re-read when it changed, with no failed call`() {
        val dir = Files.createTempDirectory("tokenwell-secret")
        val file = dir.resolve("client-secret")
        Files.writeString(file, "old-secret\n")
        TokenServer().use { server ->
            val clock = TestClock()
            val accepted = java.util.concurrent.atomic.AtomicReference(setOf("old-secret", "new-secret"))
            server.answer = {
                val secret = server.lastAuthorization.get()?.let { decode(it) }?.substringAfter(':')
                if (secret in accepted.get()) null else TokenServer.Answer(401, """{"error":"invalid_client"}""")
            }
            ServiceAccount.fromEnv(
                "",
                mapOf("CLIENT_ID" to "c", "CLIENT_SECRET_FILE" to file.toString(), "TOKEN_URL" to server.tokenUrl),
                clock = clock, refreshWhenIdle = false,
            ).use { account ->
                assertEquals("token-1", account.getToken())
                // The server rotates; the file is replaced Kubernetes-style (a new file renamed over it).
                accepted.set(setOf("new-secret"))
                val next = dir.resolve("next")
                Files.writeString(next, "new-secret\n")
                Files.move(next, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
                clock.advance(3600_000)
                assertEquals("token-2", account.getToken())
                assertEquals(2, server.requests.get())
            }
        }
    }

    @Test
    fun `send adds the bearer token, and on 401 invalidates and retries once`() {
        TokenServer().use { server ->
            val api = com.sun.net.httpserver.HttpServer.create(java.net.InetSocketAddress("127.0.0.1", 0), 0)
            val seen = Collections.synchronizedList(ArrayList<String?>())
            api.createContext("/api") { exchange ->
                val auth = exchange.requestHeaders.getFirst("Authorization")
                seen.add(auth)
                val status = if (auth == "Bearer token-1") 401 else 200
                exchange.sendResponseHeaders(status, -1)
                exchange.close()
            }
            api.start()
            try {
                account(server).use { account ->
                    val request = java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create("http://127.0.0.1:${api.address.port}/api"),
                    ).build()
                    val response = account.send(request, java.net.http.HttpResponse.BodyHandlers.discarding())
                    assertEquals(200, response.statusCode())
                    assertEquals(listOf("Bearer token-1", "Bearer token-2"), seen.toList())
                    // the one-argument form: the body as a string
                    val again: java.net.http.HttpResponse<String> = account.send(request)
                    assertEquals(200, again.statusCode())
                    assertEquals("Bearer token-2", seen.last())
                }
            } finally {
                api.stop(0)
            }
        }
    }

    @Test
    fun `a client_secret_jwt account signs an assertion (entropy added before the poll)`() {
        TokenServer().use { server ->
            ServiceAccount(
                tokenUrl = server.tokenUrl, clientId = "c", clientSecret = listOf("a-long-enough-hmac-secret-0123456789"),
                authMethod = "client_secret_jwt", refreshWhenIdle = false,
            ).use { account ->
                assertEquals("token-1", account.getToken())
                assertEquals(null, server.lastAuthorization.get(), "an assertion, not Basic auth")
            }
        }
    }

    @Test
    fun `closed accounts refuse with the engine's closed error`() {
        TokenServer().use { server ->
            val account = account(server)
            account.close()
            val error = assertThrows(HostException::class.java) { account.getToken() }
            assertEquals("closed", error.kind)
        }
    }

    private fun decode(header: String): String =
        String(java.util.Base64.getDecoder().decode(header.removePrefix("Basic ")))
            .let { java.net.URLDecoder.decode(it, Charsets.UTF_8) }
}
