#!/usr/bin/env bash
# Builds the Java compat programs (src/*.java): fetches kafka-clients $KAFSCALE_JAVA_CLIENT_VERSION
# (default 3.9.1) with its runtime dependencies from Maven Central into
# .tools/java-compat/libs-VERSION, and compiles src/ with javac into .tools/java-compat/classes-VERSION.
# Does nothing when the inputs did not change. Run a program with:
#   java -cp ".tools/java-compat/classes-3.9.1:.tools/java-compat/libs-3.9.1/*" IdempotentProducer ...
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VERSION="${KAFSCALE_JAVA_CLIENT_VERSION:-3.9.1}"
OUT="$ROOT/.tools/java-compat"
LIBS="$OUT/libs-$VERSION"
CLASSES="$OUT/classes-$VERSION"

die() {
  echo "java-compat: $*" >&2
  exit 1
}

command -v javac >/dev/null || die "\"javac\" is not installed; install a JDK 17 (apt-get install -y openjdk-17-jdk-headless)."
want="$VERSION $(cat "$HERE/pom.xml" "$HERE"/src/*.java | sha256sum | cut -d' ' -f1)"
if [[ -f "$CLASSES/.stamp" && "$(cat "$CLASSES/.stamp")" == "$want" ]]; then exit 0; fi

if [[ ! -f "$LIBS/.complete" ]]; then
  command -v mvn >/dev/null || die "\"mvn\" is not installed; run \"apt-get install -y maven\"."
  echo "java-compat: fetching org.apache.kafka:kafka-clients:$VERSION into $LIBS" >&2
  rm -rf "$LIBS"
  mvn -q -B -Dstyle.color=never -f "$HERE/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$VERSION" -DoutputDirectory="$LIBS" >&2 ||
    die "Maven could not fetch kafka-clients \"$VERSION\"; check KAFSCALE_JAVA_CLIENT_VERSION."
  [[ -f "$LIBS/kafka-clients-$VERSION.jar" ]] ||
    die "Maven finished but \"kafka-clients-$VERSION.jar\" is missing in \"$LIBS\"."
  touch "$LIBS/.complete"
fi

echo "java-compat: compiling $HERE/src against kafka-clients $VERSION" >&2
rm -rf "$CLASSES"
mkdir -p "$CLASSES"
javac -nowarn -d "$CLASSES" -cp "$LIBS/*" "$HERE"/src/*.java
echo "$want" >"$CLASSES/.stamp"
