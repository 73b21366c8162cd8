#!/bin/sh
# jobbudget's jobcomp script: meters each job the moment it ends (docs/slurm.md).
# Written by `jobbudget slurm install`@VERSION@.  slurmctld runs it (JobCompType=jobcomp/script,
# JobCompLoc=this file) outside its locks, with the job in its environment (JOBID, JOBSTATE,
# START, END, PROCS, ACCOUNT, USERNAME, PARTITION, QOS, ARRAYJOBID); the job is still in
# slurmctld's memory, so squeue tells the TRES it held and scontrol the admin comment
# job_submit.lua wrote (only operators can change it).  A job missed here (jobbudget
# down) is found by `jobbudget slurm backfill`, and counted once.
URL=@URL@
KEY_FILE=@KEY_FILE@
SQUEUE=@SQUEUE@
SCONTROL=@SCONTROL@
CURL=@CURL@

[ -n "$JOBID" ] || exit 0
TRES=$("$SQUEUE" -h -t all -j "$JOBID" -O 'tres-alloc:|' 2>/dev/null | head -n 1)
# The hold's mark, from slurmctld's record of the job (at once; the accounting database
# may not have it yet).  A job name or path of the user's can hold text like a mark, so
# the mark counts only if exactly one appears (an array's tasks, all shown for its first
# id, share theirs): job_submit.lua marks every job, so a second one is someone's text,
# and then none is trusted (the hold expires by itself).
MARK=$("$SCONTROL" show job -o "$JOBID" 2>/dev/null | grep -o 'jobbudget:[A-Za-z0-9]*' | sort -u)
[ "$(printf '%s\n' "$MARK" | grep -c .)" = 1 ] || MARK=""
# A task of an array shares the array's hold: only the last task to end settles it.
if [ -n "$ARRAYJOBID" ] && [ "$ARRAYJOBID" != 0 ] && \
  "$SQUEUE" -h -r -j "$ARRAYJOBID" -t PD,CF,R,CG,S -o %A 2>/dev/null | grep -vqx "$JOBID"; then
  MARK=""
fi
status=$("$CURL" -sS -m 2 -H @"$KEY_FILE" -o /dev/null -w '%{http_code}' \
  --data-urlencode "job_id=$JOBID" --data-urlencode "job_state=$JOBSTATE" \
  --data-urlencode "start=$START" --data-urlencode "end=$END" --data-urlencode "cpus=$PROCS" \
  --data-urlencode "account=$ACCOUNT" --data-urlencode "user=$USERNAME" \
  --data-urlencode "partition=$PARTITION" --data-urlencode "qos=$QOS" \
  --data-urlencode "tres=${TRES%|}" --data-urlencode "admin_comment=$MARK" \
  "$URL/v1/slurm/jobs")
if [ "$status" != "200" ]; then
  why="jobbudget: job $JOBID not metered (HTTP $status); jobbudget slurm backfill will find it"
  logger -t jobbudget "$why" 2>/dev/null || true  # syslog: slurmctld's log only says the script failed
  echo "$why" >&2
  exit 1
fi
