#!/bin/sh
# jobbudget's jobcomp script: meters each job the moment it ends (docs/slurm.md).
# Written by `jobbudget slurm install`@VERSION@.  slurmctld runs it (JobCompType=jobcomp/script,
# JobCompLoc=this file) outside its locks, with the job in its environment (JOBID, JOBSTATE,
# START, END, PROCS, ACCOUNT, USERNAME, PARTITION, QOS, ARRAYJOBID); the job is still in
# slurmctld's memory, so squeue tells the TRES it held.  The id of its hold is in its
# admin comment, which job_submit.lua wrote and only operators can change; it is read
# from the accounting database (sacct prints that field alone: no text of the user's can
# pass for it).  A job missed here (jobbudget down) is found by `jobbudget slurm backfill`,
# and counted once.
URL=@URL@
KEY_FILE=@KEY_FILE@
SQUEUE=@SQUEUE@
SACCT=@SACCT@
CURL=@CURL@

[ -n "$JOBID" ] || exit 0
TRES=$("$SQUEUE" -h -t all -j "$JOBID" -O 'tres-alloc:|' 2>/dev/null | head -n 1)
MARK=""
for pause in 0.2 0.4 0; do  # slurmdbd may be a moment behind (a job from before install has none)
  MARK=$("$SACCT" -n -X -P -j "$JOBID" -o AdminComment 2>/dev/null | head -n 1)
  [ -n "$MARK" ] && break
  sleep "$pause"
done
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
