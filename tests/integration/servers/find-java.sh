#!/usr/bin/env bash
# find-java.sh MIN_MAJOR: print a JAVA_HOME whose `java` is version MIN_MAJOR
# or later (the newest found), or fail with a clear message.
#
# Looked at, in order: $TOKENWELL_JAVA_HOME (used as given, must fit), then
# $JAVA_HOME, every /usr/lib/jvm/*, /opt/java/*, and the JDK of `java` on
# PATH. Keycloak 26 needs Java 21+; the machine's default java may be older.
set -euo pipefail
min=${1:?usage: find-java.sh MIN_MAJOR}

major_of() { # JAVA_HOME -> major version, or nothing
  local v
  [[ -x $1/bin/java ]] || return 0
  v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/^ *java\.specification\.version =/ { print $2; exit }')
  v=${v#1.} # 1.8 -> 8
  [[ $v =~ ^[0-9]+$ ]] && echo "$v"
  return 0
}

if [[ -n ${TOKENWELL_JAVA_HOME:-} ]]; then
  m=$(major_of "$TOKENWELL_JAVA_HOME")
  if [[ -n $m && $m -ge $min ]]; then echo "$TOKENWELL_JAVA_HOME"; exit 0; fi
  echo "find-java: TOKENWELL_JAVA_HOME=$TOKENWELL_JAVA_HOME is not a Java $min+ home (found: ${m:-no java})" >&2
  exit 1
fi

candidates=()
[[ -n ${JAVA_HOME:-} ]] && candidates+=("$JAVA_HOME")
for d in /usr/lib/jvm/* /opt/java/*; do [[ -d $d && ! -L $d ]] && candidates+=("$d"); done
if command -v java >/dev/null; then
  j=$(readlink -f "$(command -v java)")
  candidates+=("${j%/bin/java}")
fi

best= best_m=0 seen=""
for c in "${candidates[@]}"; do
  m=$(major_of "$c")
  seen+=" $c(${m:-?})"
  if [[ -n $m && $m -ge $min && $m -gt $best_m ]]; then best=$c best_m=$m; fi
done
if [[ -z $best ]]; then
  echo "find-java: no Java $min or later found (looked at:${seen:- nothing}); install a JDK $min+ (e.g. Temurin) under /usr/lib/jvm or set TOKENWELL_JAVA_HOME" >&2
  exit 1
fi
echo "$best"
