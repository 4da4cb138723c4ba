package dev.tokenwell

/**
 * The little JSON this package writes: the engine's options, built from
 * strings and lists (no JSON library is a dependency). Values are JSON text.
 */
internal object Json {
    /** [value] as a JSON string literal. */
    fun str(value: String): String {
        val out = StringBuilder(value.length + 2).append('"')
        for (c in value) {
            when {
                c == '"' -> out.append("\\\"")
                c == '\\' -> out.append("\\\\")
                c < ' ' || c == '\u2028' || c == '\u2029' -> out.append(String.format("\\u%04x", c.code))
                else -> out.append(c)
            }
        }
        return out.append('"').toString()
    }

    /** [values] as a JSON array of strings. */
    fun list(values: List<String>): String = values.joinToString(",", "[", "]") { str(it) }

    /** `name to JSON text` pairs, as a map. */
    fun obj(vararg fields: Pair<String, String?>): Map<String, String?> = linkedMapOf(*fields)

    /** A JSON object of the fields whose value is not `null`. */
    fun objOf(fields: Map<String, String?>): String =
        fields.entries.filter { it.value != null }.joinToString(",", "{", "}") { "${str(it.key)}:${it.value}" }
}
