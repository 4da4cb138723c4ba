package dev.tokenwell

import com.sun.net.httpserver.HttpServer
import java.net.InetAddress
import java.net.InetSocketAddress
import java.time.Clock
import java.time.Instant
import java.time.ZoneId
import java.time.ZoneOffset
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.atomic.AtomicReference

/**
 * A scripted token server on 127.0.0.1 (JDK's HttpServer), for faults no real
 * server produces on demand: it counts token requests, can hold every
 * response until the test releases it, and answers what [answer] says.
 */
class TokenServer : AutoCloseable {
    /** A canned answer: status, JSON body. */
    class Answer(val status: Int, val body: String)

    val requests = AtomicInteger()
    val lastAuthorization = AtomicReference<String?>()
    private val issued = AtomicInteger()
    @Volatile var expiresIn: Long = 3600
    /** The answer to give, or `null` from it for a fresh token. */
    @Volatile var answer: (() -> Answer?)? = null
    @Volatile var hold: CountDownLatch? = null

    private val server: HttpServer = HttpServer.create(InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0).apply {
        executor = Executors.newFixedThreadPool(4) { r -> Thread(r, "token-server").apply { isDaemon = true } }
        createContext("/oauth2/token") { exchange ->
            requests.incrementAndGet()
            lastAuthorization.set(exchange.requestHeaders.getFirst("Authorization"))
            exchange.requestBody.readAllBytes()
            hold?.await(30, TimeUnit.SECONDS)
            val canned = answer?.invoke()
                ?: Answer(200, """{"access_token":"token-${issued.incrementAndGet()}","token_type":"Bearer","expires_in":$expiresIn}""")
            val bytes = canned.body.toByteArray()
            exchange.responseHeaders.add("Content-Type", "application/json")
            exchange.sendResponseHeaders(canned.status, bytes.size.toLong())
            exchange.responseBody.use { it.write(bytes) }
        }
        start()
    }

    val tokenUrl: String get() = "http://127.0.0.1:${server.address.port}/oauth2/token"

    override fun close() = server.stop(0)
}

/** A clock the test moves by hand. */
class TestClock(start: Long = 1_700_000_000_000L) : Clock() {
    private val now = AtomicLong(start)
    fun advance(ms: Long) { now.addAndGet(ms) }
    override fun millis(): Long = now.get()
    override fun instant(): Instant = Instant.ofEpochMilli(millis())
    override fun getZone(): ZoneId = ZoneOffset.UTC
    override fun withZone(zone: ZoneId?): Clock = this
}
