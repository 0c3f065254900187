#!/usr/bin/env bash
# Redeploy one Jupiter job on Docker Compose, keeping its place in Kafka and its state.
#
#   infra/compose/redeploy.sh <job> [--parallelism N] [--taskmanagers N] [--timeout SECONDS]
#                             [--no-savepoint]
#
# 1. Finds the job's RUNNING Flink job through the JobManager's REST API (curl inside the
#    JobManager container: no published port needed).
# 2. Stops it with a savepoint, draining it first so the ClickHouse sinks insert their buffered
#    rows: POST /jobs/<id>/stop {"drain": true, "targetDirectory": ...} into
#    file:///opt/flink/checkpoints/<job>/<job name>/savepoints, the layout of
#    jupiter_common.flink.restore, and polls the savepoint until it is COMPLETED.
#    If the savepoint fails, the job keeps running and nothing is redeployed.
# 3. Recreates the job's JobManager and TaskManagers (`docker compose up -d --force-recreate`),
#    with the new parallelism / number of TaskManagers when given; a new image tag
#    (<JOB>_IMAGE_TAG) is picked up the same way.
# 4. The new job resumes from that savepoint by itself: FLINK_RESUME=latest picks the newest
#    checkpoint or savepoint under FLINK_CHECKPOINT_DIR/<job>/<job name>, and after a stop with
#    savepoint that is the savepoint. No FLINK_RESTORE_PATH is set, because a restore path stays
#    in the container's environment and would win again at every later restart. The script waits
#    for the new job to run and prints what it restored from.
#
# <job> is a job of jupiter_common/registry.py, whose Compose file infra/compose/<job>-job.yaml
# is generated from it (`hatch run generate`); this script knows no job list of its own.
# --parallelism / --taskmanagers set <JOB>_PARALLELISM / <JOB>_TASKMANAGERS for this `up` only;
# without them the values come from the environment or infra/compose/.env, else 1. Keep them in
# .env so that a later plain `up` does not scale the job back.
# --no-savepoint redeploys even when no JobManager answers (the job then resumes from its latest
# retained checkpoint, replaying what it inserted after that checkpoint).
#
# Needs: docker with the compose plugin, and python3 on this machine (to read the JSON answers).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here

usage() {
    sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() {
    echo "redeploy: $*" >&2
    exit 1
}

log() {
    echo "redeploy: $*"
}

job=""
parallelism=""
taskmanagers=""
timeout=600
savepoint=true
while (($# > 0)); do
    case $1 in
        --parallelism)
            [[ $# -ge 2 ]] || usage
            parallelism=$2
            shift 2
            ;;
        --taskmanagers)
            [[ $# -ge 2 ]] || usage
            taskmanagers=$2
            shift 2
            ;;
        --timeout)
            [[ $# -ge 2 ]] || usage
            timeout=$2
            shift 2
            ;;
        --no-savepoint)
            savepoint=false
            shift
            ;;
        -h | --help)
            usage
            ;;
        -*)
            echo "redeploy: unknown argument: $1" >&2
            usage
            ;;
        *)
            [[ -z $job ]] || usage
            [[ $1 =~ ^[a-z][a-z0-9]*$ ]] || die "'$1' is not a job name"
            job=$1
            shift
            ;;
    esac
done
[[ -n $job ]] || usage
for value in "$parallelism" "$taskmanagers" "$timeout"; do
    if [[ -n $value && ! $value =~ ^[1-9][0-9]*$ ]]; then
        die "'$value' is not a positive whole number"
    fi
done

prefix=${job^^}
compose_file="$here/$job-job.yaml"
jobmanager="$job-jobmanager"
taskmanager="$job-taskmanager"
checkpoint_dir="file:///opt/flink/checkpoints"
[[ -f $compose_file ]] || die "no job '$job': no compose file $compose_file"
command -v python3 > /dev/null || die "python3 is needed to read the REST API's answers"

if [[ -n $parallelism ]]; then
    export "${prefix}_PARALLELISM=$parallelism"
fi
if [[ -n $taskmanagers ]]; then
    export "${prefix}_TASKMANAGERS=$taskmanagers"
fi

compose() {
    docker compose -f "$compose_file" "$@"
}

# rest PATH [curl options...]: the JobManager's REST API, from inside its container.
rest() {
    local path=$1
    shift
    compose exec -T "$jobmanager" curl -fsS --max-time 30 "$@" "http://localhost:8081$path"
}

# The first RUNNING job as "<id> <name>", or nothing.
running_job() {
    rest /jobs/overview 2> /dev/null | python3 -c '
import json, sys
for job in json.load(sys.stdin).get("jobs", []):
    if job.get("state") == "RUNNING":
        print(job["jid"], job["name"])
        break
' || true
}

# The savepoint operation's state: "COMPLETED <location>", "FAILED <cause>" or "IN_PROGRESS".
savepoint_status() {
    rest "/jobs/$1/savepoints/$2" | python3 -c '
import json, sys
answer = json.load(sys.stdin)
state = answer.get("status", {}).get("id", "IN_PROGRESS")
operation = answer.get("operation") or {}
if state != "COMPLETED":
    print("IN_PROGRESS")
elif "failure-cause" in operation:
    cause = operation["failure-cause"]
    lines = str(cause.get("stack-trace") or cause.get("class") or cause).splitlines()
    print("FAILED", lines[0] if lines else "unknown")
else:
    print("COMPLETED", operation.get("location", ""))
'
}

# What a job restored from: its checkpoint statistics' latest.restored.external_path, or nothing.
restored_from() {
    rest "/jobs/$1/checkpoints" 2> /dev/null | python3 -c '
import json, sys
restored = (json.load(sys.stdin).get("latest") or {}).get("restored") or {}
print(restored.get("external_path", ""))
' || true
}

# Paths as Flink prints them ("file:/opt/...") and as URIs ("file:///opt/...") compare equal.
normalize() {
    local path=${1#file:}
    printf '/%s\n' "$(printf '%s' "$path" | sed 's#^/*##; s#/*$##')"
}

location=""
if [[ $savepoint == true ]]; then
    read -r job_id job_name < <(running_job) || true
    if [[ -z ${job_id:-} ]]; then
        if ! rest /overview > /dev/null 2>&1; then
            die "the $jobmanager REST API does not answer; is the job deployed" \
                "(docker compose -f $compose_file up -d)? --no-savepoint redeploys anyway"
        fi
        log "no RUNNING job on $jobmanager: nothing to stop, redeploying"
    else
        target="$checkpoint_dir/$job/$job_name/savepoints"
        log "stopping $job_name ($job_id) with a savepoint into $target"
        body=$(printf '{"drain": true, "targetDirectory": "%s"}' "$target")
        trigger=$(rest "/jobs/$job_id/stop" -X POST -H "Content-Type: application/json" \
            -d "$body" | python3 -c 'import json, sys; print(json.load(sys.stdin)["request-id"])')
        deadline=$((SECONDS + timeout))
        while :; do
            read -r state detail < <(savepoint_status "$job_id" "$trigger") || true
            case ${state:-} in
                COMPLETED)
                    location=$detail
                    break
                    ;;
                FAILED)
                    die "the savepoint failed, the job keeps running: $detail"
                    ;;
            esac
            ((SECONDS < deadline)) || die "no savepoint after ${timeout}s (trigger $trigger);" \
                "the job may still be stopping: check http://localhost:8081 in $jobmanager"
            sleep 2
        done
        log "savepoint: $location"
    fi
fi

parallelism_var="${prefix}_PARALLELISM"
taskmanagers_var="${prefix}_TASKMANAGERS"
log "recreating $jobmanager and $taskmanager: parallelism ${!parallelism_var:-(.env or 1)}," \
    "TaskManagers ${!taskmanagers_var:-(.env or 1)}"
compose up -d --force-recreate "$jobmanager" "$taskmanager"

deadline=$((SECONDS + timeout))
while :; do
    read -r new_id new_name < <(running_job) || true
    if [[ -n ${new_id:-} ]]; then
        break
    fi
    ((SECONDS < deadline)) || die "the job is not RUNNING after ${timeout}s:" \
        "docker compose -f $compose_file logs $jobmanager"
    sleep 3
done
log "$new_name is RUNNING as $new_id"

restored=""
for _ in 1 2 3 4 5; do
    restored=$(restored_from "$new_id")
    [[ -z $restored ]] || break
    sleep 2
done
if [[ -n $location ]]; then
    if [[ -n $restored && $(normalize "$restored") == "$(normalize "$location")" ]]; then
        log "resumed from the savepoint $restored"
    else
        die "the job restored from '${restored:-nothing}', not from the savepoint $location;" \
            "check FLINK_RESTORE_PATH / FLINK_RESUME in $compose_file"
    fi
else
    log "restored from: ${restored:-nothing (fresh state, committed Kafka offsets)}"
fi
