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
}
