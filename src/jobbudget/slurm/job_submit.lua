-- jobbudget's job_submit.lua: Slurm asks jobbudget whether a job may run (docs/slurm.md).
-- Written by `jobbudget slurm install`@VERSION@; settings below, the rest is jobbudget's.
--
-- slurmctld calls slurm_job_submit for every sbatch/srun/salloc, holding its job lock:
-- the call to jobbudget is bounded by TIMEOUT, and when jobbudget does not answer in
-- time FAIL_MODE decides ("open": the job is accepted unchecked and the miss is logged;
-- "closed": it is refused).  An allowed job holds its estimated cost (its request for
-- its whole time limit) until it ends; the hold's id goes into its admin comment.

local URL = @URL@
local KEY_FILE = @KEY_FILE@ -- one line, "Authorization: Bearer <key>", readable by SlurmUser only
local TIMEOUT = @TIMEOUT@ -- seconds
local FAIL_MODE = @FAIL_MODE@ -- "open" or "closed"
local CURL = @CURL@

local NO_VAL = 4294967294 -- Slurm's "not set" (NO_VAL); INFINITE is one more

local function shell_quoted(text)
  return "'" .. string.gsub(text, "'", "'\\''") .. "'"
end

local function json_text(text)
  return '"' .. string.gsub(text, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

local function said(text) -- slurm.log_* format their text: a % of the user's must be doubled
  return (string.gsub(text, "%%", "%%%%"))
end

local function count(value, unset) -- a number Slurm was given, nil when not set (or infinite)
  local n = tonumber(value)
  if n == nil or n < 0 or n >= (unset or NO_VAL) then return nil end
  return math.floor(n)
end

local function time_limit(job_desc, part_list, name) -- minutes: the job's, else its partition's
  local own = count(job_desc.time_limit)
  if own ~= nil then return own end
  local part = part_list[name]
  if part ~= nil then return count(part.default_time) or count(part.max_time) end
  return nil
end

local function default_partition(part_list)
  for pname, part in pairs(part_list) do
    if part.flag_default == 1 then return pname end
  end
  return ""
end

local function request(job_desc, part_list)
  local partition = job_desc.partition or default_partition(part_list)
  partition = string.match(partition, "^[^,]*") -- a list: the first (Slurm tries them in order)
  local fields = {
    user = job_desc.user_name or "",
    account = job_desc.account or job_desc.default_account or "",
    partition = partition,
    qos = job_desc.qos or job_desc.default_qos or "",
    tres_per_job = job_desc.tres_per_job or "",
    tres_per_node = job_desc.tres_per_node or "",
    tres_per_task = job_desc.tres_per_task or "",
    tres_per_socket = job_desc.tres_per_socket or "",
    array = job_desc.array_inx or "",
  }
  local numbers = {
    cpus = count(job_desc.min_cpus),
    nodes = count(job_desc.min_nodes),
    tasks = count(job_desc.num_tasks),
    memory_per_node_mb = count(job_desc.min_mem_per_node, 1e18),
    memory_per_cpu_mb = count(job_desc.min_mem_per_cpu, 1e18),
    time_limit_minutes = time_limit(job_desc, part_list, partition),
  }
  local parts = {}
  for k, v in pairs(fields) do table.insert(parts, json_text(k) .. ":" .. json_text(tostring(v))) end
  for k, v in pairs(numbers) do table.insert(parts, json_text(k) .. ":" .. string.format("%d", v)) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function ask(body)
  local command = CURL .. " -sS -m " .. TIMEOUT .. " --connect-timeout " .. TIMEOUT
    .. " -H @" .. shell_quoted(KEY_FILE)
    .. " -H 'Content-Type: application/json' -H 'Accept: text/plain'"
    .. " -w '\\nhttp_status=%{http_code}\\n' --data-binary " .. shell_quoted(body)
    .. " " .. shell_quoted(URL .. "/v1/slurm/admit") .. " 2>&1"
  local pipe = io.popen(command, "r")
  if pipe == nil then return nil, "cannot run " .. CURL end
  local out = pipe:read("*a") or ""
  pipe:close()
  local answer = {}
  for key, value in string.gmatch(out, "([%w_]+)=([^\n]*)") do answer[key] = value end
  return answer, out
end

local BREAK_SECONDS = 10 -- after jobbudget failed to answer, do not ask it again for this long
local broken_until = 0 -- (Lua's state lives as long as slurmctld keeps this script loaded)

local function unreachable(why)
  if FAIL_MODE == "closed" then
    slurm.log_error("jobbudget: job refused, jobbudget did not answer (fail closed): %s", why)
    slurm.log_user("jobbudget, which checks budgets, is not answering: jobs are refused until it is back. "
      .. "Try again in a few minutes, or ask your administrators.")
    return slurm.ERROR
  end
  slurm.log_error("jobbudget: job accepted without a budget check, jobbudget did not answer (fail open): %s", why)
  return slurm.SUCCESS
end

-- The hold's id goes into the admin comment, for the jobcomp script: always a mark
-- ("jobbudget:none" for a job admitted without a hold, or unchecked), so the script
-- finds one at once and no text of the user's can stand for a missing one.
local function mark(job_desc, site_comment, reservation)
  local text = "jobbudget:" .. ((reservation ~= nil and reservation ~= "") and reservation or "none")
  if site_comment ~= nil and site_comment ~= "" then text = site_comment .. " " .. text end
  job_desc.admin_comment = text
end

function slurm_job_submit(job_desc, part_list, submit_uid)
  local site_comment = job_desc.admin_comment
  mark(job_desc, site_comment, nil)
  if os.time() < broken_until then
    return unreachable("not asked: it did not answer less than " .. BREAK_SECONDS .. " s ago")
  end
  local answer, out = ask(request(job_desc, part_list))
  if answer == nil then return unreachable(out) end
  local status = answer.http_status or "000"
  local shown = string.sub(string.gsub(out, "%s+", " "), 1, 300)
  if status == "000" or string.sub(status, 1, 1) == "5" or status == "429" then
    broken_until = os.time() + BREAK_SECONDS -- later jobs go straight to FAIL_MODE, slurmctld is not held up
    return unreachable("HTTP " .. status .. ": " .. shown)
  end
  if status == "401" or status == "403" then -- a wrong or unreadable KEY_FILE: the operator's to fix
    slurm.log_error("jobbudget: jobbudget refused this cluster's key (HTTP %s): check %s", status, KEY_FILE)
    return unreachable("HTTP " .. status .. ": the key was refused")
  end
  if status ~= "200" or answer.action == nil then -- the job itself cannot be admitted: never billed as free
    slurm.log_user("jobbudget cannot price this job: " .. said(answer.message or ("HTTP " .. status)))
    return slurm.ERROR
  end
  if answer.action == "block" then
    slurm.log_user(said(answer.message or "refused by jobbudget"))
    return slurm.ERROR
  end
  mark(job_desc, site_comment, answer.reservation)
  if answer.nice ~= nil then job_desc.nice = 2147483648 + tonumber(answer.nice) end -- Slurm's NICE_OFFSET
  if answer.hold == "1" then job_desc.priority = 0 end
  if answer.qos ~= nil and answer.qos ~= "" then job_desc.qos = answer.qos end
  if answer.message ~= nil and answer.message ~= "" then
    slurm.log_user("jobbudget: " .. said(answer.message))
  end
  return slurm.SUCCESS
end

-- What a job asks for was priced and held at submission: a pending job that changes its
-- account, partition, QOS or size, or lengthens its time limit, would escape that check
-- (an account over budget, more GPUs than held).  Such changes are refused (scontrol says
-- "Unspecified error"; slurmctld's log says why); cancel the job and submit it again.
function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
  if string.find(job_rec.admin_comment or "", "jobbudget:", 1, true) == nil then return slurm.SUCCESS end
  local changed = {}
  local function differs(name, new, old)
    if new ~= nil and tostring(new) ~= tostring(old) then table.insert(changed, name) end
  end
  differs("account", job_desc.account, job_rec.account)
  differs("partition", job_desc.partition, job_rec.partition)
  differs("QOS", job_desc.qos, job_rec.qos)
  differs("CPUs", count(job_desc.min_cpus) or count(job_desc.pn_min_cpus, 65534), nil)
  differs("nodes", count(job_desc.min_nodes) or count(job_desc.max_nodes), nil)
  differs("tasks", count(job_desc.num_tasks) or count(job_desc.ntasks_per_node, 65534), nil)
  differs("memory", count(job_desc.min_mem_per_node, 1e18) or count(job_desc.min_mem_per_cpu, 1e18), nil)
  differs("GPUs", job_desc.tres_per_node or job_desc.tres_per_job or job_desc.tres_per_task, nil)
  local limit = count(job_desc.time_limit)
  if limit ~= nil and limit > (count(job_rec.time_limit) or 0) then table.insert(changed, "time limit") end
  if #changed == 0 then return slurm.SUCCESS end
  local why = "jobbudget: this job's " .. table.concat(changed, ", ")
    .. " cannot change: its budget was checked for what it asked at submission; cancel it and submit it again"
  slurm.log_info("%s (job %s, uid %s)", why, tostring(job_rec.job_id), tostring(modify_uid))
  slurm.log_user(said(why))
  return slurm.ERROR
end

slurm.log_info("jobbudget: job_submit.lua loaded (%s, fail %s, timeout %s s)", URL, FAIL_MODE, TIMEOUT)
return slurm.SUCCESS
