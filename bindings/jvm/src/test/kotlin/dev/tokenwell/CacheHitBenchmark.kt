package dev.tokenwell

import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test
import java.time.Clock

/**
 * ns per cache hit of [ServiceAccount.getToken] and [ServiceAccount.token]
 * against a JVM floor measured in the same run: a volatile read of a cached
 * string and its deadline, and a clock compare. Runs with `-Dtokenwell.bench=1`
 * (`make bench`); prints the numbers and the ratio.
 */
class CacheHitBenchmark {
    private class Cached(val token: String, val deadline: Long)

    @Volatile private var floor: Cached? = null

    private fun floorHit(clock: Clock): String {
        val cached = floor
        if (cached != null && clock.millis() < cached.deadline) return cached.token
        throw IllegalStateException("expired")
    }

    private inline fun measure(rounds: Int, iterations: Int, call: () -> String): Double {
        var best = Double.MAX_VALUE
        var sink = 0
        repeat(rounds) {
            val start = System.nanoTime()
            for (i in 0 until iterations) sink += call().length
            best = minOf(best, (System.nanoTime() - start).toDouble() / iterations)
        }
        if (sink == 42) println()
        return best
    }

    @Test
    fun `cache hit against a volatile read floor`() {
        assumeTrue(System.getProperty("tokenwell.bench") != null, "benchmark: run with -Dtokenwell.bench=1")
        val clock = Clock.systemUTC()
        TokenServer().use { server ->
            server.expiresIn = 3600
            ServiceAccount(tokenUrl = server.tokenUrl, clientId = "c", clientSecret = listOf("s")).use { account ->
                val token = account.getToken()
                floor = Cached(token, clock.millis() + 3_000_000)
                val iterations = 20_000_000
                measure(3, iterations) { floorHit(clock) } // warm up
                measure(3, iterations) { account.getToken() }
                val floorNs = measure(5, iterations) { floorHit(clock) }
                val hitNs = measure(5, iterations) { account.getToken() }
                println("cache hit (getToken): %.2f ns, floor (volatile read + clock compare): %.2f ns, ratio %.2f"
                    .format(hitNs, floorNs, hitNs / floorNs))
                println("token requests: ${server.requests.get()}")
            }
        }
    }
}
