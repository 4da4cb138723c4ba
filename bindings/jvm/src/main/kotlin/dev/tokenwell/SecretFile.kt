package dev.tokenwell

import dev.tokenwell.ffi.EngineCache
import dev.tokenwell.ffi.EngineException
import dev.tokenwell.ffi.FileStamp
import dev.tokenwell.ffi.SecretFileWatch
import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.attribute.FileTime
import java.util.concurrent.TimeUnit

/**
 * A secret file re-read when it changed, by the engine's rule
 * (`SecretFileWatch`: a `stat` at most once a second on the token path and at
 * once after `invalid_client`; a read whenever device, inode, size, mtime or
 * ctime changed, which catches a Kubernetes `..data` symlink swap). The new
 * contents go to the engine's one entry point, `replace_secrets_from_file`.
 */
internal class SecretFile(private val path: Path, private val source: String) {
    private val watch = SecretFileWatch()
    val checkIntervalMs: Long = watch.checkIntervalMs()

    /** Called under the account's lock. */
    fun check(cache: EngineCache, now: Long, forced: Boolean) {
        if (!watch.due(now, forced)) return
        val stamp = try {
            stamp()
        } catch (failure: IOException) {
            watch.failed(now)
            cache.reportSecretFileProblem(source, "cannot be read (${failure.javaClass.simpleName})", now)
            return
        }
        if (!watch.changed(stamp, now)) return
        val contents = try {
            Files.readString(path)
        } catch (failure: IOException) {
            watch.failed(now)
            cache.reportSecretFileProblem(source, "cannot be read (${failure.javaClass.simpleName})", now)
            return
        }
        watch.read(stamp)
        try {
            cache.replaceSecretsFromFile(contents, source, now)
        } catch (_: EngineException) {
            // Refused: the engine kept the current secrets and queued a secret_file_rejected event.
        }
    }

    private fun stamp(): FileStamp {
        val attributes = Files.readAttributes(path, "unix:dev,ino,size,lastModifiedTime,ctime")
        fun nanos(name: String): Long = (attributes[name] as? FileTime)?.to(TimeUnit.NANOSECONDS) ?: 0
        return FileStamp(
            device = (attributes["dev"] as? Number)?.toLong() ?: 0,
            inode = (attributes["ino"] as? Number)?.toLong() ?: 0,
            size = (attributes["size"] as? Number)?.toLong() ?: 0,
            modifiedNs = nanos("lastModifiedTime"),
            changedNs = nanos("ctime"),
        )
    }
}
