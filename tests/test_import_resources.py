"""Named resources from sacct (GPUs per type, licences, ``billing``), QoS and exit
state, and how ``jobbudget import`` refuses a job whose resource the cost model does
not price.

The rows below are **synthetic** (written for these tests in the shape of
``sacct --parsable2`` output: no public export with typed GPUs was found; see
data/PROVENANCE.md).  The real GPU jobs of XDMoD's reference export are tested in
``test_import_corpus.py``."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import Result

from cli_support import Run, cli_on
from jobbudget.cli.importing import Summary, _Ingester, parse_prices
from jobbudget.config import Config
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.errors import ValidationError
from jobbudget.importers import LineError, ParsedJob, SacctOptions, parse_sacct, parse_swf_trace
from jobbudget.service import BudgetService

HEADER = "JobID|User|Account|Partition|QOS|Start|End|ElapsedRaw|AllocCPUS|ReqTRES|AllocTRES|State"
ROW = "{id}|alice|p1|gpu|normal|2026-11-02T10:00:00|2026-11-02T11:00:00|{elapsed}|8|{req}|{alloc}|{state}"


def row(alloc: str, *, req: str = "", elapsed: int = 3600, state: str = "COMPLETED", job: int = 1) -> str:
    return ROW.format(id=job, elapsed=elapsed, req=req, alloc=alloc, state=state)


def parse(*rows: str, header: str = HEADER, **options: object) -> list[object]:
    return list(parse_sacct([header, *rows], SacctOptions(**options)))  # type: ignore[arg-type]


def metrics(*rows: str, **options: object) -> JobMetrics:
    (item,) = parse(*rows, **options)
    assert isinstance(item, ParsedJob), item
    return item.metrics


@pytest.mark.parametrize(
    ("alloc", "expected"),
    [
        ("billing=8,cpu=8,gres/gpu:a100=4,mem=64G,node=1", {"gpu:a100": 14400}),
        ("billing=8,cpu=8,gres/gpu=4,gres/gpu:a100=4,mem=64G,node=1", {"gpu:a100": 14400}),  # not 8 GPUs
        ("cpu=8,gres/gpu=2,mem=64G,node=1", {"gpu": 7200}),
        ("cpu=8,gres/gpu=3,gres/gpu:a100=1,gres/gpu:a40=2", {"gpu:a100": 3600, "gpu:a40": 7200}),
        ("cpu=8,gres/gpu=4,gres/gpu:a100=2", {"gpu:a100": 7200, "gpu": 7200}),  # 2 untracked GPUs
        ("cpu=8,gres/gpu=1,gres/gpu:a100_3g.40gb=1", {"gpu:a100_3g.40gb": 3600}),  # a MIG slice
        ("cpu=8,gres/gpu:V100=1", {"gpu:v100": 3600}),  # a type is lower-cased
        ("cpu=8,gres/gpu:nvidia_a100-sxm4-80gb=1,gres/gpumem=80G,gres/gpuutil=50", {"gpu:nvidia_a100-sxm4-80gb": 3600}),
        ("cpu=8,license/matlab=2,license/ansys@db=1", {"license:matlab": 7200, "license:ansys_db": 3600}),
        ("billing=8,cpu=8,mem=64G,node=1", {}),
        ("cpu=8,gres/gpu=0", {}),
    ],
)
def test_alloc_tres_gives_resource_seconds(alloc: str, expected: dict[str, int]) -> None:
    assert metrics(row(alloc)).resources == {k: Decimal(v) for k, v in expected.items()}


def test_req_tres_when_alloc_tres_is_missing_and_gres_of_older_slurm() -> None:
    assert metrics(row("", req="cpu=8,gres/gpu:v100=2")).resources == {"gpu:v100": Decimal(7200)}
    assert metrics(row("cpu=8,node=1", req="cpu=8,gres/gpu:v100=2")).resources == {}  # held no GPU
    header = "JobID|User|Partition|Start|End|ElapsedRaw|AllocCPUS|ReqGRES|AllocGRES|State"
    old = "7|bob|gpu|2019-01-01T00:00:00|2019-01-01T01:00:00|3600|4|{req}|{alloc}|COMPLETED"
    for req, alloc, expected in [
        ("gpu:2", "gpu:tesla:2(IDX:0-1)", {"gpu:tesla": 7200}),
        ("gpu:P100:2(IDX:1,3),hbm:0", "", {"gpu:p100": 7200}),  # the commas inside (IDX:...) are not items
        ("gpu:4,bandwidth:4G", "", {"gpu": 14400}),
        ("gpu:0(IDX:N/A)", "", {}),
    ]:
        (item,) = parse(old.format(req=req, alloc=alloc), header=header)
        assert isinstance(item, ParsedJob)
        assert item.metrics.resources == {k: Decimal(v) for k, v in expected.items()}, (req, alloc)


def test_billing_only_when_asked_and_no_resources_without_run_time() -> None:
    alloc = "billing=12,cpu=8,gres/gpu:a100=1"
    assert "billing" not in metrics(row(alloc)).resources
    assert metrics(row(alloc), billing=True).resources == {"billing": Decimal(43200), "gpu:a100": Decimal(3600)}
    assert metrics(row(alloc, elapsed=0, state="FAILED")).resources == {}


def test_qos_and_exit_state() -> None:
    job = metrics(row("cpu=8", state="CANCELLED by 1234"))
    assert (job.qos, job.exit_state) == ("normal", "CANCELLED")
    assert metrics(row("cpu=8", state="OUT_OF_MEMORY")).exit_state == "OUT_OF_MEMORY"
    assert metrics(row("cpu=8", state="NODE_FAIL")).exit_state == "NODE_FAIL"


def test_a_bad_tres_entry_rejects_the_line_naming_the_column() -> None:
    (error,) = parse(row("cpu=8,gres/gpu:a100=lots"))
    assert isinstance(error, LineError) and error.line == 2 and error.field == "AllocTRES"
    assert "gres/gpu:a100=lots" in error.message and "whole count" in error.message
    (error,) = parse(row("cpu=8,gres/gpu:_bad=1"))
    assert isinstance(error, LineError) and "'_bad' cannot be a resource name" in error.message


def test_swf_has_no_gpu_fields() -> None:
    (item,) = list(parse_swf_trace(["1 0 10 100 4 -1 -1 4 200 1024 1 7 3 1 1 1 -1 -1"]))
    assert isinstance(item, ParsedJob) and item.metrics.resources == {}


def test_prices_are_exact_and_checked() -> None:
    assert parse_prices(["gpu=0.0008", "gpu:a100=0.001"]) == {"gpu": Decimal("0.0008"), "gpu:a100": Decimal("0.001")}
    for bad in ("gpu", "gpu=", "gpu=cheap", "GPU=1", "gpu=-1", "gpu=NaN"):
        with pytest.raises(ValidationError):
            parse_prices([bad])


# -- jobbudget import -------------------------------------------------------------------

FILE = "\n".join(
    [
        HEADER,
        row("cpu=8,gres/gpu=4,gres/gpu:a100=4,mem=64G", job=1),
        row("cpu=8,mem=64G", job=2),
        row("cpu=8,gres/gpu=1,gres/gpu:v100=1", job=3),
        row("billing=16,cpu=8,mem=64G", job=4),
    ]
)


@pytest.fixture
def run(db: str, cli_env: None) -> Run:
    cli = cli_on(db, init=False)

    def invoke(*args: str) -> Result:
        return cli("import", "--format", "sacct", *args, "--no-notify")

    return invoke


def test_gpu_jobs_without_a_price_are_refused_by_name(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "gpus.txt"
    path.write_text(FILE, encoding="utf-8")
    first = run(str(path))
    assert first.exit_code == 1
    assert "4 jobs read: 2 stored, 0 duplicates, 2 rejected" in first.stdout
    assert "Rejected: 1 no price for gpu:a100, 1 no price for gpu:v100." in first.stdout
    assert "no price for gpu:a100, gpu:v100: add one with --price NAME=DOLLARS" in first.stdout
    assert (
        "rejected line 2: resources.gpu:a100: the cost model has no price for gpu:a100 (the job used 14400 "
        "GPU-seconds); add one (--price gpu:a100=DOLLARS, or --price gpu=DOLLARS for every type, or the cost "
        "model's resources), then import again"
    ) in " ".join(first.stderr.split())
    second = run(str(path), "--price", "gpu=0.0008", "--price", "gpu:a100=0.001", "--json")
    assert second.exit_code == 0, second.stderr
    data = json.loads(second.stdout)
    assert (data["stored"], data["duplicates"], data["rejected"]) == (2, 2, 0)
    assert data["prices"] == {"gpu": "0.0008", "gpu:a100": "0.001"} and data["rejected_reasons"] == {}
    # the two GPU jobs: 14400 s × 0.001 + 3600 s × 0.0008 on top of their CPU, memory and base
    assert Decimal(data["total_cost"]) > Decimal("14.4") + Decimal("2.88")


def test_billing_tres_is_billed_when_asked_and_priced(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "billing.txt"
    path.write_text("\n".join([HEADER, row("billing=16,cpu=8,mem=64G", job=9)]), encoding="utf-8")
    refused = run(str(path), "--sacct-billing", "--json")
    assert refused.exit_code == 1 and json.loads(refused.stdout)["rejected_reasons"] == {"no price for billing": 1}
    priced = run(str(path), "--sacct-billing", "--price", "billing=0.00001", "--json")
    assert priced.exit_code == 0 and json.loads(priced.stdout)["stored"] == 1
    assert "Cost model changed with billing = 0.00001 $ (version" in run(str(path), "--price", "billing=0.00001").stdout


def test_a_price_removed_while_importing_refuses_that_job_only(tmp_path: Path) -> None:
    """The model is read when the import starts; if another process drops the price
    before the batch is stored, that job is refused and the rest are stored."""
    config = Config(database_url=f"sqlite:///{tmp_path / 'race.db'}")
    with BudgetService(config) as service:
        model = service.get_cost_model()
        service.update_cost_model(replace(model, resources={"gpu": Decimal("0.001")}))
        summary = Summary(file="x", format="sacct", strict=False)
        errors: list[LineError] = []
        ingester = _Ingester(service, summary, errors.append)
        jobs = parse(row("cpu=8,gres/gpu:a100=1", job=5), row("cpu=8", job=6))
        checked = [ingester.check(item) for item in jobs if isinstance(item, ParsedJob)]
        service.update_cost_model(model)  # the price is gone
        ingester.store([c for c in checked if c is not None])
        assert (summary.stored, summary.rejected) == (1, 1)
        assert errors[0].field == "resources.gpu:a100" and summary.rejected_reasons == {"no price for gpu:a100": 1}
