package dev.tokenwell

import com.fasterxml.jackson.databind.ObjectMapper
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

/**
 * End to end against the real authorization servers that
 * tests/integration/run.sh starts on 127.0.0.1 (Ory Hydra, oidc-provider,
 * Keycloak when present), described by $TOKENWELL_SERVERS. Skipped without
 * it, unless TOKENWELL_REQUIRE_SERVERS=1 (the end-to-end suite), where a
 * missing description fails.
 */
class EndToEndServersTest {
    private val servers: Map<*, *>? = System.getenv("TOKENWELL_SERVERS")?.let {
        ObjectMapper().readValue(Files.readString(Path.of(it)), Map::class.java)
    }

    private fun requireServers(): Map<*, *> {
        if (System.getenv("TOKENWELL_REQUIRE_SERVERS") == "1") assertTrue(servers != null, "TOKENWELL_SERVERS is not set")
        assumeTrue(servers != null, "no servers: run through tests/integration/run.sh")
        return servers!!
    }

    /** Every server present, by name. */
    private fun each(): List<Pair<String, Map<*, *>>> =
        listOf("hydra", "oidc_provider", "keycloak").mapNotNull { name -> (requireServers()[name] as? Map<*, *>)?.let { name to it } }

    private fun account(server: Map<*, *>, client: Map<*, *>, onEvent: ((TokenEvent) -> Unit)? = null): ServiceAccount {
        @Suppress("UNCHECKED_CAST")
        val audience = if (server["audience_parameter"] == "audience") client["audience"] as List<String> else emptyList()
        @Suppress("UNCHECKED_CAST")
        return ServiceAccount(
            tokenUrl = server["token_url"] as String,
            clientId = client["client_id"] as String,
            clientSecret = listOf(client["client_secret"] as String),
            scope = client["scopes"] as List<String>,
            audience = audience,
            authMethod = client["auth_method"] as String,
            onEvent = onEvent,
        )
    }

    @Test
    fun `basic, post and special-character secrets get tokens (e2e)`() {
        for ((name, server) in each()) {
            val clients = server["clients"] as Map<*, *>
            for (kind in listOf("basic", "post", "special_secret")) {
                val client = clients[kind] as? Map<*, *> ?: continue
                account(server, client).use { account ->
                    val token = account.getToken()
                    assertTrue(token.isNotEmpty(), "$name $kind")
                    assertEquals(token, runBlocking { account.token() }, "$name $kind: the second call is a cache hit")
                }
            }
        }
    }

    @Test
    fun `the bulk clients with random secrets all get tokens (e2e)`() {
        for ((name, server) in each()) {
            val bulk = server["bulk_clients"] as? List<*> ?: continue
            var ok = 0
            for (client in bulk) {
                account(server, client as Map<*, *>).use { it.getToken(); ok++ }
            }
            println("e2e $name: ${bulk.size} bulk clients, $ok tokens")
            assertEquals(bulk.size, ok)
        }
    }

    @Test
    fun `a 5 second token soak is refreshed ahead in the background with no failed call (e2e)`() {
        for ((name, server) in each()) {
            val client = (server["clients"] as Map<*, *>)["short_ttl"] as? Map<*, *> ?: continue
            val ttlSeconds = (client["access_token_ttl_seconds"] as Number).toLong()
            val refreshed = CountDownLatch(3)
            account(server, client) { e -> if (e.type == "token_acquired") refreshed.countDown() }.use { account ->
                val tokens = HashSet<String>()
                var calls = 0
                // Callers keep asking until three tokens were acquired (two background refreshes).
                while (refreshed.count > 0) {
                    val batch = runBlocking {
                        (1..50).map { async(Dispatchers.Default) { account.token() } }.awaitAll()
                    }
                    tokens.addAll(batch)
                    calls += batch.size
                    refreshed.await(20, TimeUnit.MILLISECONDS)
                    assertTrue(calls < 10_000_000, "no refresh within the soak")
                }
                println("e2e $name soak: ${ttlSeconds}s tokens, $calls calls, ${tokens.size} tokens, 0 failures")
                assertTrue(tokens.size >= 2)
            }
        }
    }

    /** Events as they arrive, and a wait for a condition on them (no sleeping). */
    private class EventLog {
        val events = ArrayList<TokenEvent>()
        private val lock = Object()
        fun add(event: TokenEvent) = synchronized(lock) { events.add(event); lock.notifyAll() }
        fun countSince(mark: Int, type: String): Int = synchronized(lock) { events.drop(mark).count { it.type == type } }
        fun size(): Int = synchronized(lock) { events.size }
        fun waitUntil(what: String, condition: () -> Boolean) {
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60)
            synchronized(lock) {
                while (!condition()) {
                    val left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())
                    if (left <= 0) throw AssertionError("timed out waiting for $what; events: ${events.map { it.type }}")
                    lock.wait(left)
                }
            }
        }
    }

    @Test
    fun `secret rotation in Hydra through a secret file has zero failed calls (e2e)`() {
        val hydra = requireServers()["hydra"] as? Map<*, *> ?: return
        val dir = Files.createTempDirectory("tokenwell-rotation")
        val pid = ProcessHandle.current().pid()
        val old = "old:+% $pid"
        val new = "new&= \u00e9$pid"
        val doc = dir.resolve("client.json")
        val mapper = ObjectMapper()
        fun writeClient(secret: String) = Files.writeString(doc, mapper.writeValueAsString(mapOf(
            "client_name" to "Rotating Worker (JVM)",
            "client_secret" to secret,
            "grant_types" to listOf("client_credentials"),
            "token_endpoint_auth_method" to "client_secret_basic",
            "scope" to "billing:read",
            "client_credentials_grant_access_token_lifespan" to "4s",
        )))
        fun hydraCli(vararg args: String): String {
            val process = ProcessBuilder(listOf(hydra["bin"] as String) + args).redirectErrorStream(true).start()
            val out = process.inputStream.readAllBytes().toString(Charsets.UTF_8)
            assertEquals(0, process.waitFor(), out)
            return out
        }
        val secretFile = dir.resolve("client-secret")
        fun mount(vararg secrets: String) { // an atomic swap, as the kubelet does
            val staged = dir.resolve(".client-secret.new")
            Files.writeString(staged, secrets.joinToString("") { "$it\n" })
            Files.move(staged, secretFile, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING)
        }
        val admin = hydra["admin_url"] as String
        writeClient(old)
        val created = mapper.readValue(
            hydraCli("create", "client", "--endpoint", admin, "--format", "json", "--file", doc.toString()), Map::class.java,
        )
        val clientId = created["client_id"] as String
        mount(old)
        val log = EventLog()
        val account = ServiceAccount.fromEnv(
            "",
            mapOf("CLIENT_ID" to clientId, "CLIENT_SECRET_FILE" to secretFile.toString(), "TOKEN_URL" to hydra["token_url"] as String, "SCOPE" to "billing:read"),
            onEvent = log::add,
        )
        account.use {
            account.getToken()
            val failures = java.util.concurrent.atomic.AtomicInteger()
            val calls = java.util.concurrent.atomic.AtomicInteger()
            val stop = java.util.concurrent.atomic.AtomicBoolean(false)
            val worker = kotlin.concurrent.thread(name = "rotation-worker") {
                while (!stop.get()) {
                    try {
                        account.getToken()
                    } catch (_: TokenException) {
                        failures.incrementAndGet()
                    }
                    calls.incrementAndGet()
                    java.util.concurrent.locks.LockSupport.parkNanos(1_000_000) // the pacing of a busy worker, not synchronization
                }
            }
            try {
                var mark = log.size()
                mount(new, old)
                log.waitUntil("the new secret file to be read") { log.countSince(mark, "secrets_replaced") >= 1 }
                mark = log.size()
                log.waitUntil("a refresh with [new, old]") { log.countSince(mark, "token_acquired") >= 1 }
                writeClient(new)
                hydraCli("update", "client", clientId, "--endpoint", admin, "--format", "json", "--file", doc.toString())
                mark = log.size()
                log.waitUntil("two refreshes after the rotation") { log.countSince(mark, "token_acquired") >= 2 }
                mark = log.size()
                mount(new)
                log.waitUntil("two refreshes with only the new secret") { log.countSince(mark, "token_acquired") >= 2 }
            } finally {
                stop.set(true)
                worker.join()
            }
            val fallbacks = log.countSince(0, "secret_fallback")
            println("e2e hydra rotation: ${calls.get()} calls, ${failures.get()} failures, $fallbacks secret fallbacks")
            assertEquals(0, failures.get())
            assertTrue(fallbacks >= 2, "expected fallbacks to the old secret, then to the new one")
            assertTrue(log.events.none { it.json.contains(old) || it.json.contains(new) }, "a secret is in an event")
        }
    }
}
