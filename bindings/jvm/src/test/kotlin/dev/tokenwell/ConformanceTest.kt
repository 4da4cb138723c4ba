package dev.tokenwell

import com.fasterxml.jackson.databind.ObjectMapper
import dev.tokenwell.ffi.EngineCache
import dev.tokenwell.ffi.EngineConfig
import dev.tokenwell.ffi.EngineException
import dev.tokenwell.ffi.EngineRequest
import dev.tokenwell.ffi.EngineToken
import dev.tokenwell.ffi.PollOutcome
import dev.tokenwell.ffi.TokenErrorInfo
import dev.tokenwell.ffi.mergeEnv
import dev.tokenwell.ffi.readEnv
import dev.tokenwell.ffi.retryRequest
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.TestFactory
import java.nio.file.Files
import java.nio.file.Path
import java.util.Base64
import kotlin.io.path.extension
import kotlin.io.path.nameWithoutExtension
import kotlin.io.path.readText

/**
 * Replays every shared conformance scenario (each file in tests/conformance/scenarios)
 * and every host-contract scenario (tests/conformance/host) through the
 * generated Kotlin bindings, converting their objects to the canonical
 * outputs and matching them as subsets, like every other runner
 * (tests/conformance/README.md).
 */
class ConformanceTest {
    private val mapper = ObjectMapper()

    @TestFactory
    fun scenarios(): List<DynamicTest> = files("scenarios").map { path ->
        DynamicTest.dynamicTest(path.nameWithoutExtension) { replay(parse(path.readText()) as Map<*, *>) }
    }

    @TestFactory
    fun hostContract(): List<DynamicTest> = files("host").map { path ->
        DynamicTest.dynamicTest(path.nameWithoutExtension) { replayHost(parse(path.readText()) as Map<*, *>) }
    }

    private fun parse(text: String): Any? = mapper.readValue(text, Any::class.java)

    private fun replay(scenario: Map<*, *>) {
        val configJson = mapper.writeValueAsString(scenario["config"])
        val entropy = (scenario["entropy"] as? Number)?.toLong() ?: 0L
        if (scenario.containsKey("expect_config_error")) {
            val refused = runCatching { EngineConfig.fromJson(configJson) }.exceptionOrNull()
            assertTrue(refused is EngineException.Config, "expected a configuration error, got $refused")
            val problem = (refused as EngineException.Config).error
            Matcher.subset(scenario["expect_config_error"], mapOf("field" to problem.field, "problem" to problem.problem))
            return
        }
        val cache = EngineCache(EngineConfig.fromJson(configJson), entropy)
        (scenario["steps"] as List<*>).forEachIndexed { i, raw ->
            val step = raw as Map<*, *>
            val actual = runStep(cache, step)
            Matcher.check(step, actual, "step $i (${step["do"]})", mapper)
        }
    }

    private fun runStep(cache: EngineCache, step: Map<*, *>): Map<String, Any?> {
        val at = (step["at"] as? Number)?.toLong() ?: 0L
        return when (val action = step["do"]) {
            "poll" -> canonicalPoll(cache.poll(at))
            "respond" -> {
                val body = (step["body_base64"] as? String)?.let { Base64.getDecoder().decode(it) }
                    ?: ((step["body"] as? String) ?: "").toByteArray()
                val headers = (step["headers"] as? List<*> ?: emptyList<Any>()).map { h -> (h as List<*>).map { it as String } }
                try {
                    val token = cache.handleResponse(number(step["fetch_id"]), number(step["status"]).toInt(), headers, body, at)
                    mapOf("result" to "token", "token" to canonicalToken(token))
                } catch (error: EngineException.Token) {
                    mapOf("result" to "error", "error" to canonicalError(error.error))
                }
            }
            "transport_error" -> mapOf(
                "result" to "error",
                "error" to canonicalError(
                    cache.handleTransportError(number(step["fetch_id"]), step["kind"] as String, (step["message"] as? String) ?: "", at),
                ),
            )
            "invalidate" -> mapOf("result" to cache.invalidate(step["token"] as String, at))
            "replace_secrets" -> try {
                mapOf("result" to "replaced", "changed" to cache.replaceSecrets((step["secrets"] as List<*>).map { it as String }, at))
            } catch (error: EngineException.Config) {
                mapOf("result" to "error", "error" to mapOf("field" to error.error.field, "problem" to error.error.problem))
            }
            "next_wakeup" -> mapOf("at" to cache.nextWakeup())
            "export_snapshot" -> cache.exportSnapshot(at)
                ?.let { mapOf("result" to "snapshot", "snapshot" to parse(it)) } ?: mapOf("result" to "none")
            "import_snapshot" -> {
                val text = (step["snapshot_text"] as? String) ?: mapper.writeValueAsString(step["snapshot"])
                try {
                    cache.importSnapshot(text, at)
                    mapOf("result" to "imported")
                } catch (error: EngineException.Snapshot) {
                    mapOf("result" to "error", "reason" to error.reason)
                }
            }
            "events" -> mapOf("events" to cache.drainEvents().map { parse(it.json) })
            else -> throw AssertionError("unknown step kind $action")
        }
    }

    private fun replayHost(case: Map<*, *>) {
        when (case["kind"]) {
            "env" -> replayEnv(case)
            "secret_file" -> replaySecretFile(case)
            "unauthorized" -> {
                val retry = retryRequest(case["invalidate_outcome"] as String)
                Matcher.subset(case["expect"], mapOf("retry" to retry))
            }
            else -> throw AssertionError("unknown host scenario kind ${case["kind"]}")
        }
    }

    private fun replayEnv(case: Map<*, *>) {
        val env = (case["env"] as Map<*, *>).map { (k, v) -> k as String to v as String }.toMap()
        val actual: Map<String, Any?> = try {
            val merged = mergeEnv(
                mapper.writeValueAsString(case["explicit"] ?: emptyMap<String, Any>()),
                readEnv(case["prefix"] as String, env),
                case["explicit_secret_file"] as String?,
                case["explicit_ca_file"] as String?,
            )
            merged.checkRequired()
            val config = merged.intoConfig(
                if (merged.secretFile() != null) case["secret_file_contents"] as String? else null,
                if (merged.keyFile() != null) case["key_file_contents"] as String? else null,
            )
            mapOf(
                "config" to mapOf(
                    "token_url" to config.tokenUrl(),
                    "client_id" to config.clientId(),
                    "auth_method" to config.authMethod(),
                    "scopes" to config.scopes(),
                    "audiences" to config.audiences(),
                    "secret_count" to config.secretCount().toLong(),
                    "secret_file" to merged.secretFile(),
                    "ca_file" to merged.caFile(),
                    "issuer" to config.issuer(),
                    "key_count" to config.keyCount().toLong(),
                    "key_file" to merged.keyFile(),
                ),
            )
        } catch (error: EngineException.Config) {
            mapOf("error" to mapOf("field" to error.error.field, "problem" to error.error.problem))
        }
        if (case.containsKey("expect_error")) {
            assertTrue(actual.containsKey("error"), "expected an error, got $actual")
            Matcher.subset(case["expect_error"], actual["error"])
        } else {
            assertTrue(actual.containsKey("config"), "expected a configuration, got $actual")
            Matcher.subset(case["expect"], actual["config"])
        }
    }

    private fun replaySecretFile(case: Map<*, *>) {
        val current = (case["current"] as List<*>).map { it as String }
        val options = mapOf("token_url" to "https://auth.example/oauth2/token", "client_id" to "c", "client_secret" to current)
        val cache = EngineCache(EngineConfig.fromJson(mapper.writeValueAsString(options)), 0)
        val now = 1_700_000_000_000L
        val actual = try {
            val changed = cache.replaceSecretsFromFile(case["contents"] as String, case["source"] as String, now)
            mutableMapOf<String, Any?>("result" to "replaced", "changed" to changed)
        } catch (error: EngineException.Config) {
            mutableMapOf<String, Any?>(
                "result" to "rejected",
                "error" to mapOf("field" to error.error.field, "problem" to error.error.problem),
            )
        }
        actual["secret_count"] = cache.secretCount().toLong()
        actual["events"] = cache.drainEvents().map { parse(it.json) }
        Matcher.subset(case["expect"], actual)
    }

    private fun number(value: Any?): Long = (value as Number).toLong()

    private fun canonicalPoll(poll: PollOutcome): Map<String, Any?> = when (poll) {
        is PollOutcome.Ready -> mapOf("result" to "ready", "token" to canonicalToken(poll.token))
        is PollOutcome.ReadyAndSend -> mapOf(
            "result" to "ready_and_send",
            "token" to canonicalToken(poll.token),
            "request" to canonicalRequest(poll.request),
        )
        is PollOutcome.Send -> mapOf("result" to "send", "request" to canonicalRequest(poll.request))
        is PollOutcome.Wait -> mapOf("result" to "wait", "fetch_id" to poll.fetchId)
        is PollOutcome.Fail -> mapOf("result" to "fail", "error" to canonicalError(poll.error))
    }

    private fun canonicalToken(token: EngineToken): Map<String, Any?> = mapOf(
        "access_token" to token.accessToken(),
        "token_type" to token.tokenType(),
        "scope" to token.scope(),
        "received_at" to token.receivedAt(),
        "expires_at" to token.expiresAt(),
        "usable_until" to token.usableUntil(),
        "refresh_at" to token.refreshAt(),
        "lifetime_source" to token.lifetimeSource(),
    )

    private fun canonicalRequest(request: EngineRequest): Map<String, Any?> = mapOf(
        "fetch_id" to request.fetchId(),
        "method" to request.method(),
        "url" to request.url(),
        "headers" to request.headers(),
        "body" to request.body(),
        "timeout_ms" to request.timeoutMs(),
    )

    private fun canonicalError(error: TokenErrorInfo): Map<String, Any?> = mapOf(
        "kind" to error.kind,
        "fault" to error.fault,
        "retryable" to error.retryable,
        "retry_at" to error.retryAt,
        "status" to error.status,
        "oauth_error" to error.oauthError,
        "description" to error.description,
    )

    companion object {
        fun conformanceDir(): Path =
            Path.of(System.getenv("TOKENWELL_CONFORMANCE") ?: "../../tests/conformance").toAbsolutePath().normalize()

        fun files(sub: String): List<Path> {
            val dir = conformanceDir().resolve(sub)
            val paths = Files.list(dir).use { stream -> stream.filter { it.extension == "json" }.sorted().toList() }
            assertTrue(paths.isNotEmpty(), "no scenarios in $dir")
            return paths
        }
    }
}

/** The README's matcher: expected keys present and matching; arrays equal in length; numbers as numbers. */
object Matcher {
    fun subset(expected: Any?, actual: Any?, path: String = "") {
        when (expected) {
            is Map<*, *> -> {
                if (actual !is Map<*, *>) throw AssertionError("$path: expected an object, got $actual")
                for ((key, value) in expected) {
                    if (!actual.containsKey(key)) throw AssertionError("$path.$key: missing in actual")
                    subset(value, actual[key], "$path.$key")
                }
            }
            is List<*> -> {
                if (actual !is List<*>) throw AssertionError("$path: expected an array, got $actual")
                if (expected.size != actual.size) {
                    throw AssertionError("$path: expected ${expected.size} elements, got ${actual.size}: $actual")
                }
                expected.forEachIndexed { i, e -> subset(e, actual[i], "$path[$i]") }
            }
            is Boolean, null -> if (expected != actual) throw AssertionError("$path: expected $expected, got $actual")
            is Number -> {
                if (actual !is Number || expected.toDouble() != actual.toDouble()) {
                    throw AssertionError("$path: expected $expected, got $actual")
                }
            }
            else -> if (expected != actual) throw AssertionError("$path: expected $expected, got $actual")
        }
    }

    fun check(step: Map<*, *>, actual: Any?, where: String, mapper: ObjectMapper) {
        if (step.containsKey("expect")) {
            try {
                subset(step["expect"], actual)
            } catch (mismatch: AssertionError) {
                throw AssertionError("$where: ${mismatch.message}\n  actual: ${mapper.writeValueAsString(actual)}")
            }
        }
        val text = mapper.writeValueAsString(actual)
        for (needle in step["forbid_substrings"] as? List<*> ?: emptyList<Any>()) {
            if (text.contains(needle as String)) throw AssertionError("$where: output contains forbidden $needle")
        }
    }
}
