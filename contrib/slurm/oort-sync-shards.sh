#!/usr/bin/env bash
# oort-sync over an archive too big for one machine: a Slurm array job, one task per
# shard. Each shard is a list of watched folders with its own oort-sync home (config,
# credentials, manifest, log, lock): shards share nothing but the server. See README.md
# beside this file.
#
#   oort-sync-shards.sh check          the shards file is sound (each folder in one shard)
#   oort-sync-shards.sh show [ID]      what each shard's task would run (nothing is run)
#   oort-sync-shards.sh setup [ID]     log each shard in (key on stdin) and watch its folders
#   oort-sync-shards.sh submit         sbatch the shards not queued already (from cron)
#   oort-sync-shards.sh run ID         run one shard here, without Slurm
#   sbatch --array=0-3 oort-sync-shards.sh     (what `submit` does; the task's shard is
#                                               $SLURM_ARRAY_TASK_ID)
#
# The settings are environment variables. sbatch hands the submitting environment to the
# job (--export=ALL, its default), so set them where `submit` runs (the crontab):
#   OORT_SHARDS_FILE   the shards file (default: $OORT_SHARDS_HOME/shards.conf): lines of
#                      "ID FOLDER", ID a number from 0, FOLDER absolute (spaces allowed);
#                      a shard may have several lines; # starts a comment line
#   OORT_SHARDS_HOME   where the shards' homes are made, shard-ID each (default:
#                      ~/oort-sync-shards); on storage every node mounts at the same path
#   OORT_SYNC          the command (default: oort-sync; split at spaces, e.g.
#                      "/opt/oort/bin/python /opt/oort/oort_sync.py")
#   OORT_SYNC_RUN_OPTIONS    options of each run (default: -q)
#   OORT_SYNC_USERNAME       setup: the Arcsecond username
#   OORT_SYNC_LOGIN_OPTIONS  setup: more login options (--api=URL for Arcsecond.local...)
#   OORT_SYNC_WATCH_OPTIONS  setup: watch options of every folder (-o SUBDOMAIN -t TELESCOPE)
#   OORT_SYNC_LOCK_DIR       the folder locks (default: $OORT_SHARDS_HOME/locks, seen by
#                            every node, where the one in /run/lock is each node's own)
#   OORT_SHARDS_JOB_NAME     the job's name in the queue (default: oort-sync-shards)
#
# The #SBATCH lines below are the resources of one task (one shard); `submit` adds the
# array. Adjust them to the cluster (a partition, an account).
#SBATCH --job-name=oort-sync-shards
#SBATCH --cpus-per-task=2
#SBATCH --mem=1G
#SBATCH --time=12:00:00
#SBATCH --signal=B:TERM@120
#SBATCH --output=oort-sync-shards-%A_%a.out
# (--time: a first run over a shard of years takes long; a run stopped by the limit
# resumes at the next submission, files in flight retried. --signal: SIGTERM two minutes
# before the limit, to the batch shell; it passes it on to oort-sync, which stops cleanly.)

set -uo pipefail

SHARDS_HOME=${OORT_SHARDS_HOME:-$HOME/oort-sync-shards}
SHARDS_FILE=${OORT_SHARDS_FILE:-$SHARDS_HOME/shards.conf}
JOB_NAME=${OORT_SHARDS_JOB_NAME:-oort-sync-shards}
read -r -a OORT_SYNC_CMD <<<"${OORT_SYNC:-oort-sync}"
read -r -a RUN_OPTIONS <<<"${OORT_SYNC_RUN_OPTIONS:--q}"
# One lock folder for the whole cluster: two runs over one folder never upload at once,
# whichever nodes they run on (where the shared filesystem has working locks).
export OORT_SYNC_LOCK_DIR=${OORT_SYNC_LOCK_DIR:-$SHARDS_HOME/locks}

die() {
    echo "oort-sync-shards: $*" >&2
    exit 2
}

# The shards file as "ID<TAB>FOLDER" lines, comments and blank lines left out, a
# folder's trailing slashes removed. Exits 2 on a line that is not "ID FOLDER".
entries() {
    [ -r "$SHARDS_FILE" ] || die "cannot read the shards file $SHARDS_FILE (set OORT_SHARDS_FILE)"
    local number=0 id folder
    while IFS= read -r line || [ -n "$line" ]; do
        number=$((number + 1))
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        read -r id folder <<<"$line"
        [[ $id =~ ^[0-9]+$ ]] || die "$SHARDS_FILE, line $number: '$id' is not a shard number"
        [[ $folder == /* ]] || die "$SHARDS_FILE, line $number: '$folder' is not an absolute folder"
        while [[ $folder == */ && $folder != / ]]; do folder=${folder%/}; done
        printf '%s\t%s\t%s\n' "$((10#$id))" "$folder" "$number"
    done <"$SHARDS_FILE"
}

# Each folder in one shard only, and none inside another: a folder's files are uploaded
# by one shard, never by two that cannot see each other's manifest (nor, across nodes,
# each other's folder locks, unless the lock folder is shared). Sorted with a / after
# each path, a folder and those inside it are next to each other: comparing neighbours
# finds any clash (n log n, for thousands of folders).
check() {
    local all
    all=$(entries) || exit 2
    [ -n "$all" ] || die "$SHARDS_FILE lists no folder"
    local id folder number real
    local prev="" prev_folder="" prev_number="" prev_id=""
    while IFS=$'\t' read -r real id folder number; do
        if [ -n "$prev" ] && [[ $real == "$prev"* ]]; then
            local how="is inside"
            [[ $real == "$prev" ]] && how="is the same folder as"
            die "$SHARDS_FILE: $folder (line $number, shard $id) $how $prev_folder" \
                "(line $prev_number, shard $prev_id): a folder belongs to one shard"
        fi
        prev=$real prev_folder=$folder prev_number=$number prev_id=$id
    done < <(while IFS=$'\t' read -r id folder number; do
        # Where it really is, when it exists here (a symlink to another shard's folder).
        real=$(realpath -m -- "$folder" 2>/dev/null || echo "$folder")
        printf '%s/\t%s\t%s\t%s\n' "${real%/}" "$id" "$folder" "$number"
    done <<<"$all" | LC_ALL=C sort -t $'\t' -k1,1)
}

# The shard numbers, in order, once each.
shard_ids() {
    entries | cut -f1 | sort -n -u
}

# The folders of shard $1, one per line.
shard_folders() {
    entries | awk -F '\t' -v id="$1" '$1 == id { print $2 }'
}

shard_home() {
    echo "$SHARDS_HOME/shard-$1"
}

# The folders of shard $1 into the array FOLDERS; exits 2 when it has none.
load_shard() {
    [[ $1 =~ ^[0-9]+$ ]] || die "'$1' is not a shard number"
    mapfile -t FOLDERS < <(shard_folders "$((10#$1))")
    [ ${#FOLDERS[@]} -gt 0 ] || die "shard $1 has no folder in $SHARDS_FILE"
}

show() {
    check
    local id
    for id in ${1:-$(shard_ids)}; do
        load_shard "$id"
        printf 'shard %s: OORT_SYNC_HOME=%q %s run' "$id" "$(shard_home "$id")" "${OORT_SYNC_CMD[*]}"
        printf ' %q' "${RUN_OPTIONS[@]}" "${FOLDERS[@]}"
        printf '\n'
    done
}

setup() {
    check
    [ -n "${OORT_SYNC_USERNAME:-}" ] || die "setup: set OORT_SYNC_USERNAME (and give the upload key on stdin)"
    local key id folder
    IFS= read -r key || [ -n "$key" ] || die "setup: give the upload key on stdin"
    local -a login_options watch_options
    read -r -a login_options <<<"${OORT_SYNC_LOGIN_OPTIONS:-}"
    read -r -a watch_options <<<"${OORT_SYNC_WATCH_OPTIONS:-}"
    for id in ${1:-$(shard_ids)}; do
        load_shard "$id"
        export OORT_SYNC_HOME
        OORT_SYNC_HOME=$(shard_home "$id")
        # printf is a shell builtin: the key is in no process's command line.
        printf '%s\n' "$key" | "${OORT_SYNC_CMD[@]}" login --username="$OORT_SYNC_USERNAME" \
            --key-stdin "${login_options[@]}" || die "setup: shard $id: login failed"
        for folder in "${FOLDERS[@]}"; do
            "${OORT_SYNC_CMD[@]}" watch "$folder" "${watch_options[@]}" -y ||
                die "setup: shard $id: cannot watch $folder"
        done
    done
}

# One shard's run. 75: its previous run (another task, a run by hand) still holds its
# lock: that run carries on, this one stands aside, not a failure. Any other code is the
# task's, so that sacct shows the shards that failed (1: some files, retried later).
run_shard() {
    check
    load_shard "$1"
    export OORT_SYNC_HOME
    OORT_SYNC_HOME=$(shard_home "$1")
    # In the background, so that the SIGTERM Slurm sends before the time limit (or
    # scancel) reaches oort-sync, which then stops sending and records what it sent.
    "${OORT_SYNC_CMD[@]}" run "${RUN_OPTIONS[@]}" "${FOLDERS[@]}" &
    local child=$! code
    trap 'kill -TERM "$child" 2>/dev/null' TERM INT
    wait "$child"
    code=$?
    # A signal ends the first wait early: wait again for oort-sync's own exit code.
    while kill -0 "$child" 2>/dev/null; do
        wait "$child"
        code=$?
    done
    [ "$code" -eq 75 ] && { echo "shard $1: its previous run is still going" >&2; code=0; }
    exit "$code"
}

# Submit the shards that have no task queued or running (so a tick of cron never starts
# a second run of a shard still uploading), as one array job.
submit() {
    check
    local -a wanted=()
    local id queued
    queued=$(squeue --noheader --array --user="${USER:-$(id -un)}" --name="$JOB_NAME" \
        --format=%K) || die "submit: squeue failed"
    for id in $(shard_ids); do
        grep -qx -- "$id" <<<"$queued" || wanted+=("$id")
    done
    if [ ${#wanted[@]} -eq 0 ]; then
        echo "oort-sync-shards: every shard is queued or running; nothing submitted"
        return 0
    fi
    local array
    array=$(IFS=,; echo "${wanted[*]}")
    sbatch --job-name="$JOB_NAME" --array="$array" "$(realpath -- "$0")"
}

case "${1:-}" in
    check) check && echo "oort-sync-shards: $SHARDS_FILE: shards $(shard_ids | paste -sd ' ')" ;;
    show) show "${2:-}" ;;
    setup) setup "${2:-}" ;;
    submit) submit ;;
    run) [ $# -eq 2 ] || die "usage: $0 run ID"; run_shard "$2" ;;
    "")
        [ -n "${SLURM_ARRAY_TASK_ID:-}" ] ||
            die "not a Slurm array task: use \`$0 submit\` (or sbatch --array=...), or \`$0 run ID\`"
        run_shard "$SLURM_ARRAY_TASK_ID"
        ;;
    *) die "unknown command '$1': check, show [ID], setup [ID], submit, run ID" ;;
esac
