package dev.tokenwell

import dev.tokenwell.ffi.EngineException
import dev.tokenwell.ffi.TokenErrorInfo
import java.time.Instant

/**
 * Who has to act on an error: the engine's `Fault`, one value per name.
 */
enum class Fault(val wireName: String) {
    /** The client's configuration (scope, audience, grant, endpoint): fix it. */
    CONFIGURATION("configuration"),
    /** The client's credentials: rotate or fix the secret, then alert. */
    CREDENTIALS("credentials"),
    /** The authorization server is overloaded or failing: the engine retries. */
    AUTHORIZATION_SERVER("authorization_server"),
    /** The network between host and server: the engine retries. */
    TRANSPORT("transport"),
    /** Not a token response (HTML from a proxy, bad JSON): retried, but needs a look. */
    MALFORMED_RESPONSE("malformed_response"),
    /** The host drove the engine wrongly, or the account is closed. */
    HOST("host");

    companion object {
        /** The fault named [name]; `null` for a name this build does not know. */
        fun of(name: String): Fault? = entries.firstOrNull { it.wireName == name }
    }
}

/**
 * A token could not be had. Subclasses split by who is at fault; every
 * instance carries what a caller branches on: [kind], [fault], [retryable],
 * [retryAtMs], [status], [oauthError], [description]. None ever holds a secret
 * (the engine scrubs server text of every credential before it gets here).
 */
sealed class TokenException(
    /** The engine's kind: `invalid_client`, `server_error`, `transport`, ... */
    val kind: String,
    /** Who has to act. */
    val fault: Fault,
    /** Whether the engine retries on its own (with backoff). */
    val retryable: Boolean,
    /** When the engine next allows a token request (ms since the Unix epoch). */
    val retryAtMs: Long?,
    /** The HTTP status, if there was a response. */
    val status: Int?,
    /** The RFC 6749 `error` code, if the server sent one. */
    val oauthError: String?,
    /** The server's description, or what went wrong. */
    val description: String?,
    message: String,
    cause: Throwable? = null,
) : RuntimeException(message, cause) {
    /** [retryAtMs] as an instant. */
    val retryAt: Instant? get() = retryAtMs?.let(Instant::ofEpochMilli)

    protected constructor(info: TokenErrorInfo, fault: Fault) : this(
        info.kind, fault, info.retryable, info.retryAt, info.status, info.oauthError, info.description, info.message,
    )

    companion object {
        /**
         * The exception for an engine error: one class per fault, in one
         * exhaustive `when` (a new fault fails to compile here, it cannot
         * silently become a generic error).
         */
        internal fun of(info: TokenErrorInfo): TokenException {
            val fault = Fault.of(info.fault) ?: Fault.HOST
            return when (fault) {
                Fault.CONFIGURATION -> ConfigurationException(info)
                Fault.CREDENTIALS -> CredentialsException(info)
                Fault.AUTHORIZATION_SERVER, Fault.TRANSPORT -> TransientException(info, fault)
                Fault.MALFORMED_RESPONSE -> MalformedResponseException(info)
                Fault.HOST -> HostException(info)
            }
        }

        /** A configuration error from the engine (`field`, `problem`). */
        internal fun of(error: EngineException): RuntimeException = when (error) {
            is EngineException.Token -> of(error.error)
            is EngineException.Config -> InvalidConfigException(error.error.field, error.error.problem, error.detail)
            is EngineException.Snapshot -> SnapshotException(error.reason, error.detail)
            is EngineException.Argument -> IllegalArgumentException(error.detail)
        }
    }
}

/** The configuration is wrong (scope, audience, grant, endpoint): not retried until it changes. */
open class ConfigurationException internal constructor(
    kind: String, retryable: Boolean, retryAtMs: Long?, status: Int?, oauthError: String?, description: String?, message: String,
) : TokenException(kind, Fault.CONFIGURATION, retryable, retryAtMs, status, oauthError, description, message) {
    internal constructor(info: TokenErrorInfo) :
        this(info.kind, info.retryable, info.retryAt, info.status, info.oauthError, info.description, info.message)
}

/**
 * A configuration the engine refuses, naming the [field] (or the environment
 * variable that supplied it, with its index: `SCOPE[1]`) and the [problem].
 * The message never echoes a secret.
 */
class InvalidConfigException internal constructor(
    /** The option or variable at fault. */
    val field: String,
    /** What is wrong with it. */
    val problem: String,
    message: String,
) : ConfigurationException("config", false, null, null, null, problem, message)

/** The server refused the credentials (`invalid_client`): rotate the secret, then alert. */
class CredentialsException internal constructor(info: TokenErrorInfo) : TokenException(info, Fault.CREDENTIALS)

/** The server or the network failed (429, 5xx, timeout, reset): the engine retries with backoff. */
class TransientException internal constructor(info: TokenErrorInfo, fault: Fault) : TokenException(info, fault)

/** The endpoint sent something that is not a token response: retried, reported loudly. */
class MalformedResponseException internal constructor(info: TokenErrorInfo) :
    TokenException(info, Fault.MALFORMED_RESPONSE)

/** The account is closed, or the host reported an unknown fetch. */
class HostException internal constructor(info: TokenErrorInfo) : TokenException(info, Fault.HOST)

/** A snapshot the engine refused: [reason] is `corrupt`, `unsupported_version`, `fingerprint_mismatch` or `expired`. */
class SnapshotException internal constructor(val reason: String, message: String) : RuntimeException(message)
