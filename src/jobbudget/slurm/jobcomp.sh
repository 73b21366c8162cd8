#!/bin/sh
# jobbudget's jobcomp script: meters each job the moment it ends (docs/slurm.md).
# Written by `jobbudget slurm install`@VERSION@.  slurmctld runs it (JobCompType=jobcomp/script,
# JobCompLoc=this file) outside its locks, with the job in its environment (JOBID, JOBSTATE,
# START, END, PROCS, ACCOUNT, USERNAME, PARTITION, QOS); the job is still in slurmctld's
# memory, so squeue tells the TRES it held and scontrol its admin comment (where
# job_submit.lua put the id of its hold).  A job missed here (jobbudget down) is found
# again by `jobbudget slurm backfill`, and counted once.
URL=@URL@
KEY_FILE=@KEY_FILE@
SQUEUE=@SQUEUE@
SCONTROL=@SCONTROL@
CURL=@CURL@

[ -n "$JOBID" ] || exit 0
TRES=$("$SQUEUE" -h -t all -j "$JOBID" -O 'tres-alloc:|' 2>/dev/null | head -n 1)
# The admin comment only if exactly one line shows it: a job name with a line break can
# print a second "AdminComment=" line, and then neither is trusted (the hold expires).
MARK=$("$SCONTROL" show job "$JOBID" 2>/dev/null | grep '^   AdminComment=')
[ "$(printf '%s\n' "$MARK" | grep -c .)" = 1 ] || MARK=""
status=$("$CURL" -sS -m 10 -H @"$KEY_FILE" -o /dev/null -w '%{http_code}' \
  --data-urlencode "job_id=$JOBID" --data-urlencode "job_state=$JOBSTATE" \
  --data-urlencode "start=$START" --data-urlencode "end=$END" --data-urlencode "cpus=$PROCS" \
  --data-urlencode "account=$ACCOUNT" --data-urlencode "user=$USERNAME" \
  --data-urlencode "partition=$PARTITION" --data-urlencode "qos=$QOS" \
  --data-urlencode "tres=${TRES%|}" --data-urlencode "admin_comment=${MARK#   AdminComment=}" \
  "$URL/v1/slurm/jobs")
if [ "$status" != "200" ]; then
  echo "jobbudget: job $JOBID not metered (HTTP $status); jobbudget slurm backfill will find it" >&2
  exit 1
fi
