#!/usr/bin/env bash
# Entrypoint of the Jupiter images: a thin wrapper around the official Flink image's
# /docker-entrypoint.sh, which does all the real work (FLINK_PROPERTIES, jobmanager.rpc.address,
# `standalone-job` / `taskmanager` / pass-through commands).
#
# Two additions:
# - `job` (the job images' default command) is this image's job as a Flink application cluster's
#   JobManager: `standalone-job` running PythonDriver on the module JUPITER_JOB_MODULE, which the
#   image sets (Dockerfile, build argument JOB), with the venv's Python for driver and workers.
#   Further arguments are passed on to the job.
# - a TaskManager started without TASK_MANAGER_NUMBER_OF_TASK_SLOTS gets
# ceil(FLINK_PARALLELISM / JUPITER_TASKMANAGERS) slots, so that N TaskManagers together always
# offer the slots the job needs (Docker Compose cannot compute that itself). The official entrypoint turns
# TASK_MANAGER_NUMBER_OF_TASK_SLOTS into taskmanager.numberOfTaskSlots.
#
# On Kubernetes the Flink operator starts /docker-entrypoint.sh directly and sets the slots from
# flinkConfiguration, so this wrapper is not involved there.
set -euo pipefail

positive_int() {
    # positive_int NAME VALUE DEFAULT: VALUE if it is a whole number >= 0, else fail loudly.
    local name=$1 value=${2:-$3}
    if [[ ! $value =~ ^[0-9]+$ ]]; then
        echo "jupiter-entrypoint: $name='$value' must be a whole number" >&2
        exit 2
    fi
    echo "$((10#$value))"
}

if [[ ${1:-} == "job" ]]; then
    shift
    if [[ ! ${JUPITER_JOB_MODULE:-} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        echo "jupiter-entrypoint: JUPITER_JOB_MODULE='${JUPITER_JOB_MODULE:-}' is not a module" \
            "name (set by the job images)" >&2
        exit 2
    fi
    venv_python=/opt/jupiter/venv/bin/python
    set -- standalone-job --job-classname org.apache.flink.client.python.PythonDriver \
        -pyclientexec "$venv_python" -pyexec "$venv_python" -pym "$JUPITER_JOB_MODULE" "$@"
fi

if [[ ${1:-} == "taskmanager" && -z ${TASK_MANAGER_NUMBER_OF_TASK_SLOTS:-} ]]; then
    parallelism=$(positive_int FLINK_PARALLELISM "${FLINK_PARALLELISM:-}" 1)
    taskmanagers=$(positive_int JUPITER_TASKMANAGERS "${JUPITER_TASKMANAGERS:-}" 1)
    if ((parallelism < 1)); then
        parallelism=1
    fi
    if ((taskmanagers < 1)); then
        taskmanagers=1
    fi
    TASK_MANAGER_NUMBER_OF_TASK_SLOTS=$(((parallelism + taskmanagers - 1) / taskmanagers))
    export TASK_MANAGER_NUMBER_OF_TASK_SLOTS
    echo "jupiter-entrypoint: parallelism $parallelism over $taskmanagers TaskManager(s):" \
        "$TASK_MANAGER_NUMBER_OF_TASK_SLOTS slot(s) here"
fi

exec /docker-entrypoint.sh "$@"
