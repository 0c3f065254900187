#!/usr/bin/env bash
# Install hatch if missing, and fetch the third-party jars the local real-services tooling runs against
# (Kafka broker, Flink Kafka connector) into <repo>/.cache/jars/ via infra/pom.xml.
#
# Idempotent: a stamp file records the sha256 of infra/pom.xml; if it matches
# and the jar dirs are populated, nothing is done. Editing the pom refetches.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd -- "${script_dir}/../.." && pwd)"
pom="${repo_root}/infra/pom.xml"
jars_dir="${repo_root}/.cache/jars"
stamp="${jars_dir}/.setup.stamp"

# Hatch drives the Python side (workspace env, scripts); it is the one tool we install globally.
if ! python3 -m hatch --version >/dev/null 2>&1; then
    echo "setup: installing hatch"
    python3 -m pip install -q --disable-pip-version-check 'hatch>=1.16'
fi

pom_sha="$(sha256sum "${pom}" | cut -d' ' -f1)"

jars_present() {
    compgen -G "${jars_dir}/kafka/kafka_2.13-*.jar" >/dev/null \
        && compgen -G "${jars_dir}/flink/flink-sql-connector-kafka-*.jar" >/dev/null
}

command -v mvn >/dev/null || { echo "setup: mvn not found on PATH" >&2; exit 1; }

# Jupiter's own Flink SQL functions (libs/jupiter-functions, Java): built when their sources
# changed, into the directory whose jars every job ships (FLINK_CONNECTOR_JARS).
build_functions() {
    local project="${repo_root}/libs/jupiter-functions"
    local stamp_file="${jars_dir}/.functions.stamp"
    local sources_sha
    sources_sha="$(find "${project}/pom.xml" "${project}/src" -type f -print0 | sort -z \
        | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
    if [[ -f "${stamp_file}" ]] && [[ "$(<"${stamp_file}")" == "${sources_sha}" ]] \
        && compgen -G "${jars_dir}/flink/jupiter-functions-*.jar" >/dev/null; then
        return
    fi
    local log="${jars_dir}/.functions-mvn.log"
    if ! mvn -q -B -f "${project}/pom.xml" package >"${log}" 2>&1; then
        echo "setup: building libs/jupiter-functions failed, output follows (${log}):" >&2
        cat "${log}" >&2
        exit 1
    fi
    rm -f "${log}" "${jars_dir}"/flink/jupiter-functions-*.jar
    cp "${project}"/target/jupiter-functions-*.jar "${jars_dir}/flink/"
    echo "${sources_sha}" >"${stamp_file}"
    echo "setup: built libs/jupiter-functions into .cache/jars/flink"
}

if [[ -f "${stamp}" ]] && [[ "$(<"${stamp}")" == "${pom_sha}" ]] && jars_present; then
    build_functions
    echo "setup: jars up to date in ${jars_dir}"
    exit 0
fi

# Start from empty dirs so jars from an older pom never linger on the classpath.
rm -rf "${jars_dir}/kafka" "${jars_dir}/flink" "${stamp}"
mkdir -p "${jars_dir}"

mvn_log="${jars_dir}/.setup-mvn.log"
if ! mvn -q -B -f "${pom}" generate-resources >"${mvn_log}" 2>&1; then
    echo "setup: maven failed, output follows (${mvn_log}):" >&2
    cat "${mvn_log}" >&2
    exit 1
fi
rm -f "${mvn_log}"

jars_present || { echo "setup: maven succeeded but expected jars are missing under ${jars_dir}" >&2; exit 1; }
echo "${pom_sha}" >"${stamp}"
rm -f "${jars_dir}/.functions.stamp"
build_functions

n_kafka="$(find "${jars_dir}/kafka" -name '*.jar' | wc -l)"
n_flink="$(find "${jars_dir}/flink" -name '*.jar' | wc -l)"
echo "setup: fetched ${n_kafka} jars into .cache/jars/kafka and ${n_flink} into .cache/jars/flink"
