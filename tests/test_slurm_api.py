"""``/v1/slurm/*`` through the app: what ``job_submit.lua`` and the jobcomp script send,
the answers they read, and what a hostile or mistaken caller gets.  The real cluster's
tests are in tests/e2e/test_slurm_budgets.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from jobbudget.service import BudgetService
from test_api_support import Api, error_of, make_api

PRICES: dict[str, Any] = {
    "preset": "default",
    "cpu_time_weight": "0.01",
    "memory_weight": "0.0001",
    "payload_weight": "0",
    "redis_ops_weight": "0",
    "network_weight": "0",
    "base_job_weight": "0",
    "environment_multiplier": "1",
    "resources": {"gpu:v100": "0.02", "gpu:a100": "0.05"},
}


@pytest.fixture
def api(service_factory: Callable[..., BudgetService]) -> Api:
    service = service_factory(
        cost_model=PRICES,
        slurm={"tenants": {"physics": "acme"}, "queues": {"gpu-long": "gpu"}, "emergency_qos": ["urgent"]},
    )
    return make_api(service)


def submit(**fields: Any) -> dict[str, Any]:
    return {"user": "alice", "account": "physics", "partition": "gpu", "cpus": 2, "time_limit_minutes": 10} | fields


def admit(api: Api, text: bool = False, who: str = "admin", **fields: Any) -> Any:
    headers = {"Accept": "text/plain"} if text else {}
    return api.post("/v1/slurm/admit", who=who, json=submit(**fields), headers=headers)


def form(api: Api, **fields: str) -> dict[str, str]:
    """A job that ran 100 s and ended a minute ago, as the jobcomp script reports it."""
    end = int(api.service.now().timestamp()) - 60
    base = {"job_id": "17", "job_state": "COMPLETED", "start": str(end - 100), "end": str(end), "cpus": "2"}
    return base | {"account": "physics", "user": "alice", "partition": "gpu", "qos": "normal", "tres": "cpu=2"} | fields


def ended(api: Api, **fields: str) -> Any:
    return api.post("/v1/slurm/jobs", data=form(api, **fields))


def test_a_request_is_priced_for_its_time_limit_with_its_gpus_and_memory(api: Api) -> None:
    out = admit(api, cpus=4, memory_per_node_mb=1000, nodes=2, tres_per_node="gres:gpu:a100:2").json()
    seconds = 600
    cpu, memory, gpus = 4 * seconds * Decimal("0.01"), 2000 * seconds * Decimal("0.0001"), 4 * seconds * Decimal("0.05")
    assert Decimal(out["estimated_cost"]) == cpu + memory + gpus
    assert (out["tenant_id"], out["queue_name"], out["seconds"], out["tasks"]) == ("acme", "gpu", 600, 1)
    assert out["action"] == "allow" and out["message"] == "" and out["reservation_id"] is None  # no budget: no hold


def test_per_cpu_memory_untyped_gpus_arrays_and_the_default_limit(api: Api) -> None:
    out = admit(
        api, memory_per_cpu_mb=100, time_limit_minutes=None, tres_per_job="gres:gpu:v100:1", array="1-10%2"
    ).json()
    per_task = 2 * 3600 * Decimal("0.01") + 200 * 3600 * Decimal("0.0001") + 3600 * Decimal("0.02")
    assert out["seconds"] == 3600 and out["tasks"] == 10  # the policy's default_time_limit; %2 limits, not counts
    assert Decimal(out["estimated_cost"]) == per_task * 10
    assert admit(api, array="1,3,5-9:2").json()["tasks"] == 5
    assert admit(api, partition="gpu-long").json()["queue_name"] == "gpu"


def test_an_allowed_job_holds_its_estimate_and_a_blocked_one_is_told_why(api: Api) -> None:
    api.post("/v1/budgets", json={"tenant_id": "acme", "queue_name": "gpu", "amount": "30"})
    first = admit(api, text=True)  # 2 CPUs x 600 s x 0.01 = 12.00
    lines = dict(line.split("=", 1) for line in first.text.splitlines())
    assert first.headers["content-type"].startswith("text/plain")
    assert lines["action"] == "allow" and len(lines["reservation"]) == 32 and Decimal(lines["estimate"]) == 12
    assert admit(api).json()["allowed"]  # 24.00 held
    third = admit(api, text=True)
    said = dict(line.split("=", 1) for line in third.text.splitlines())
    assert said["action"] == "block" and said["reservation"] == ""
    now = api.service.now()
    resets = f"{now.year + (now.month == 12)}-{now.month % 12 + 1:02d}-01"
    assert said["message"] == (
        "budget acme/gpu: 0.00 of 30.00 USD spent this month, 24.00 held for jobs not ended yet; this job's "
        f"estimate 12.00 USD would pass the block at 100 %: job refused; resets {resets}"
    )


def test_throttle_warn_and_emergency_in_slurms_terms(api: Api) -> None:
    api.post("/v1/budgets", json={"tenant_id": "acme", "queue_name": "gpu", "amount": "100"})
    job = {"job_id": "before", "tenant_id": "acme", "queue_name": "gpu", "cpu_time": 9200, "memory_mb_seconds": 0}
    assert api.post("/v1/jobs", json=job | {"payload_bytes": 0, "redis_ops": 0, "network_bytes": 0}).status_code == 200
    out = admit(api, time_limit_minutes=1, cpus=1).json()
    assert out["action"] == "throttle" and out["nice"] == 5000 and out["reservation_id"], out
    assert out["message"].startswith("budget acme/gpu: 92.00 of 100.00 USD spent this month")
    assert "(throttle at 90 %): this job runs at a lower priority (nice 5000)" in out["message"]
    urgent = admit(api, qos="urgent", time_limit_minutes=1, cpus=1).json()  # an emergency QOS: priority 10
    assert (urgent["action"], urgent["nice"]) == ("allow", None), urgent
    assert "admitted on the budget's emergency allowance (emergency QOS)" in urgent["message"]


def test_a_job_that_ran_settles_its_hold_and_one_that_never_ran_releases_it(api: Api) -> None:
    api.post("/v1/budgets", json={"tenant_id": "acme", "queue_name": "gpu", "amount": "100"})
    held = admit(api).json()["reservation_id"]
    never = admit(api).json()["reservation_id"]
    assert api.service.open_reservations() == 2
    out = ended(api, admin_comment=f"site note jobbudget:{held}", tres="cpu=2,mem=1G,node=1,gres/gpu:a100=1").json()
    assert out["stored"] == 1 and out["metered"][0]["job_id"] == "slurm-17", out
    cost = 100 * (2 * Decimal("0.01") + 1024 * Decimal("0.0001") + Decimal("0.05"))
    assert Decimal(out["metered"][0]["total_cost"]) == cost
    gone = ended(api, job_id="18", job_state="CANCELLED", start="0", admin_comment=f"jobbudget:{never}").json()
    assert [j["slurm_job_id"] for j in gone["released"]] == ["18"] and gone["stored"] == 0
    assert api.service.open_reservations() == 0
    again = ended(api, admin_comment=f"jobbudget:{held}", tres="cpu=2,mem=1G,node=1,gres/gpu:a100=1").json()
    assert (again["stored"], again["duplicates"]) == (0, 1)
    assert api.get("/v1/jobs/acme/slurm-17").json()["total_cost"] == f"{cost:.9f}"


def test_a_node_failure_is_refunded_by_the_refund_policy(api: Api) -> None:
    out = ended(api, job_state="NODE_FAIL", tres="cpu=2").json()
    assert out["stored"] == 1
    adjustments = api.get("/v1/adjustments", params={"tenant": "acme"}).json()
    assert any(a["job_id"] == "slurm-17" and a["kind"] == "refund" for a in adjustments), adjustments


def test_backfill_meters_missed_jobs_once_and_releases_the_holds_of_jobs_that_never_ran(api: Api) -> None:
    api.post("/v1/budgets", json={"tenant_id": "acme", "queue_name": "gpu", "amount": "100"})
    held = admit(api).json()["reservation_id"]
    never = admit(api).json()["reservation_id"]
    header = (
        "JobIDRaw|User|Account|Partition|QOS|Submit|Start|End|ElapsedRaw|CPUTimeRAW|AllocCPUS|AllocTRES|ReqMem|"
        "NNodes|NodeList|State|AdminComment"
    )
    hour = api.service.now().replace(minute=0, second=0, microsecond=0, tzinfo=None) - timedelta(hours=1)
    at = {m: f"{hour + timedelta(seconds=m):%Y-%m-%dT%H:%M:%S}" for m in (0, 5, 105, 120)}
    rows = [
        f"21|alice|physics|gpu|normal|{at[0]}|{at[5]}|{at[105]}|100|200|2|"
        f"cpu=2,mem=1G,node=1|1G|1|vm|COMPLETED|jobbudget:{held}",
        f"22|alice|physics|gpu|normal|{at[0]}|Unknown|{at[120]}|0|0|2||1G|1|None assigned|"
        f"CANCELLED by 0|jobbudget:{never}",
        f"23|alice|physics|gpu|normal|{at[0]}|{at[5]}|Unknown|0|0|2|cpu=2|1G|1|vm|RUNNING|",
        f"24|alice|physics|gpu|normal|{at[0]}|{at[5]}|{at[105]}|100|200|2|"
        "cpu=2,gres/gpu:h100=1|1G|1|vm|COMPLETED|site | text",
    ]
    body = "\n".join([header, *rows]) + "\n"
    out = api.post("/v1/slurm/sacct", content=body, headers={"Content-Type": "text/plain"}).json()
    assert out["stored"] == 1 and [j["slurm_job_id"] for j in out["released"]] == ["22"], out
    assert [j["slurm_job_id"] for j in out["pending"]] == ["23"]
    assert [r["slurm_job_id"] for r in out["rejected"]] == ["24"], out["rejected"]
    assert "gpu:h100" in out["rejected"][0]["message"]  # unpriced: named, not billed as free
    assert api.service.open_reservations() == 0
    again = api.post("/v1/slurm/sacct", content=body, headers={"Content-Type": "text/plain"}).json()
    assert (again["stored"], again["duplicates"]) == (0, 1)


@pytest.mark.parametrize("who", ["acme", "reporter", "globex"])
def test_only_an_admin_key_may_act_for_the_cluster(api: Api, who: str) -> None:
    assert admit(api, who=who).status_code == 403
    assert api.post("/v1/slurm/jobs", who=who, data=form(api)).status_code == 403
    assert api.post("/v1/slurm/sacct", who=who, content="x", headers={"Content-Type": "text/plain"}).status_code == 403
    assert api.client.post("/v1/slurm/admit", json=submit()).status_code == 401


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"tres_per_node": "gres:gpu:h100:1"}, "resources.gpu:h100", "no price for this resource"),
        ({"account": "x" * 201}, "account", ""),
        ({"array": "1-x"}, "array", "task indexes"),
        ({"cpus": -1}, "cpus", ""),
        ({"cpus": 10_000, "time_limit_minutes": 10_000_000}, "estimate", "more than 1,000,000"),
    ],
)
def test_a_job_that_cannot_be_priced_is_a_clear_422(api: Api, fields: dict[str, Any], field: str, words: str) -> None:
    response = admit(api, **fields)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["field"] == field and words in error["message"], error
    assert "Decimal(" not in error["message"] and "'" not in error["message"].split(":", 1)[0]
    assert api.service.open_reservations() == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"job_id": "17; rm -rf /"}, "job_id"),
        ({"start": "yesterday"}, "start"),
        ({"tres": "cpu=two"}, "tres"),
        ({"evil": "1"}, "evil"),
        ({"account": "x" * 300}, "account"),
    ],
)
def test_a_bad_job_report_is_refused_naming_the_field(api: Api, fields: dict[str, str], field: str) -> None:
    response = ended(api, **fields)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:  # reported per job, nothing stored
        out = response.json()
        assert out["stored"] == 0 and field in out["rejected"][0]["message"], out
    else:
        assert error_of(response)["field"] == field
    assert api.get("/v1/jobs/acme/slurm-17").status_code == 404


def test_a_tenant_reads_its_own_jobs_only(api: Api) -> None:
    ended(api, tres="cpu=2")
    assert api.get("/v1/jobs/acme/slurm-17", who="acme").status_code == 200
    assert api.get("/v1/jobs/acme/slurm-17", who="globex").status_code == 404
    assert api.get("/v1/jobs/acme/nope", who="acme").status_code == 404


def test_a_job_of_another_tenant_cannot_release_or_settle_a_hold(api: Api) -> None:
    """A hold id copied into another tenant's job (from a listing, a spoofed comment)
    changes nothing: holds are released and settled only for their own tenant."""
    api.post("/v1/budgets", json={"tenant_id": "acme", "queue_name": "gpu", "amount": "100"})
    held = admit(api).json()["reservation_id"]
    gone = ended(
        api, account="globex", job_id="30", job_state="CANCELLED", start="0", admin_comment=f"jobbudget:{held}"
    )
    assert gone.status_code == 200 and api.service.open_reservations() == 1
    ran = ended(api, account="globex", job_id="31", admin_comment=f"jobbudget:{held}").json()
    assert ran["stored"] == 1 and api.service.open_reservations() == 1  # globex billed, acme's hold kept


def test_a_requeued_run_is_billed_on_its_own_and_the_hold_waits_for_the_next(api: Api) -> None:
    api.post("/v1/budgets", json={"tenant_id": "acme", "queue_name": "gpu", "amount": "100"})
    held = admit(api).json()["reservation_id"]
    first = form(api, job_state="PENDING", admin_comment=f"jobbudget:{held}")
    out = api.post("/v1/slurm/jobs", data=first).json()
    assert out["metered"][0]["job_id"] == f"slurm-17-run{first['start']}" and out["stored"] == 1, out
    assert api.service.open_reservations() == 1  # the job runs again: still held
    last = ended(api, admin_comment=f"jobbudget:{held}").json()
    assert last["metered"][0]["job_id"] == "slurm-17" and api.service.open_reservations() == 0
    assert api.post("/v1/slurm/jobs", data=form(api, job_state="PENDING", start="0")).json()["pending"]


def test_a_job_slurmctld_forgot_is_left_to_the_backfill(api: Api) -> None:
    response = ended(api, tres="")
    assert response.status_code == 422 and "backfill" in error_of(response)["message"]
    refused = ended(api, tres="cpu=2,gres/gpu:h100=1")  # unpriced: the script logs it, nothing is stored
    assert refused.status_code == 422 and "gpu:h100" in error_of(refused)["message"]
    assert api.get("/v1/jobs/acme/slurm-17").status_code == 404


def test_errors_come_as_lines_to_a_client_that_reads_plain_text(api: Api) -> None:
    """job_submit.lua asks with ``Accept: text/plain``: a refusal's message is a line
    it can read, whatever part of the app refused."""
    cases = [
        (submit(cpus="four"), 422, "cpus"),
        (submit(tres_per_node="gres:gpu:h100:2"), 422, "resources.gpu:h100"),
    ]
    for body, status, field in cases:
        response = api.post("/v1/slurm/admit", json=body, headers={"Accept": "text/plain"})
        lines = dict(line.split("=", 1) for line in response.text.splitlines())
        assert response.status_code == status and response.headers["content-type"].startswith("text/plain")
        assert lines["field"] == field and lines["message"].startswith(field), lines
    assert api.post("/v1/slurm/admit", json={"cpus": "x"}).headers["content-type"] == "application/json"


def test_the_jobcomp_endpoint_takes_a_form_and_the_backfill_text(api: Api) -> None:
    json_body = api.post("/v1/slurm/jobs", json=form(api))
    assert json_body.status_code == 415 and "x-www-form-urlencoded" in error_of(json_body)["message"]
    wrong = api.post("/v1/slurm/sacct", content="{}", headers={"Content-Type": "application/json"})
    assert wrong.status_code == 415


def test_a_backfilled_job_without_an_account_is_its_users(api: Api) -> None:
    hour = api.service.now().replace(minute=0, second=0, microsecond=0, tzinfo=None) - timedelta(hours=1)
    header = (
        "JobIDRaw|User|Account|Partition|QOS|Submit|Start|End|ElapsedRaw|CPUTimeRAW|AllocCPUS|AllocTRES|ReqMem|"
        "NNodes|NodeList|State|AdminComment"
    )
    row = f"40|alice||gpu|normal|{hour:%Y-%m-%dT%H:%M:%S}|{hour:%Y-%m-%dT%H:%M:%S}|{hour:%Y-%m-%dT%H:%M}:50|50|50|1|cpu=1|1G|1|vm|COMPLETED|"
    out = api.post("/v1/slurm/sacct", content=f"{header}\n{row}\n", headers={"Content-Type": "text/plain"}).json()
    assert out["stored"] == 1 and out["metered"][0]["tenant_id"] == "alice", out
    assert ended(api, account="", job_id="40").json()["duplicates"] == 1  # the jobcomp path agrees: counted once


def test_gpus_without_a_type_are_estimated_at_the_dearest_type(api: Api) -> None:
    """The node decides the type of ``--gpus=1``: the estimate takes the dearest GPU the
    model prices (an upper bound), not the cheapest."""
    out = admit(api, tres_per_job="gres:gpu:1", cpus=1, time_limit_minutes=1).json()
    assert Decimal(out["estimated_cost"]) == 60 * Decimal("0.01") + 60 * Decimal("0.05")  # gpu:a100, not v100


def test_a_requeued_run_is_reported_under_slurms_own_job_id(api: Api) -> None:
    out = api.post("/v1/slurm/jobs", data=form(api, job_state="PENDING")).json()
    assert out["metered"][0]["slurm_job_id"] == "17" and out["metered"][0]["job_id"].startswith("slurm-17-run")
