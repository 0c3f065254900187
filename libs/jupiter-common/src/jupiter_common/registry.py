"""The jobs, declared once: every place that lists the jobs derives from :data:`JOBS`.

A job is a package under ``jobs/`` plus one :class:`Job` entry here. What reads the registry at
run time (settings, ``hatch run migrate``, the local tools) picks a new entry up by itself; what
cannot run Python (hatch scripts and the workspace in ``pyproject.toml``, the pre-commit mypy
paths, Compose files, Kubernetes patches, ``.env.example``) is generated from it by
``hatch run generate`` and checked against it by ``tests/unit/test_generated_files.py``
(docs/adding-a-job.md has the recipe).

The library must not import the job packages (they import the library): an entry names its
:class:`~jupiter_common.flink.runner.JobSpec` by import path, and :meth:`Job.load` imports it
when a caller needs the job itself.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from jupiter_common.errors import JupiterError
from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, SESSIONS_BASE, TableSpec

if TYPE_CHECKING:
    from jupiter_common.flink.runner import JobSpec

_NAME: Final = re.compile(r"^[a-z][a-z0-9]{0,30}$")


class UnknownJobError(JupiterError):
    """A job name that no registry entry has; the message lists the known ones."""


@dataclass(frozen=True, slots=True)
class Job:
    """One job: what every derived place needs to know about it."""

    name: str
    """Short name, lower-case letters and digits: ``movements``. The job's settings, consumer
    group, Flink job name, checkpoint folder, images, Compose project and Kubernetes resources
    are all named after it."""
    table: TableSpec
    """The ClickHouse table the job lands (its ``JobSpec.table`` agrees: tested)."""
    spec: str
    """Import path of the job's :class:`~jupiter_common.flink.runner.JobSpec`, ``module:NAME``."""
    sample_columns: tuple[str, ...]
    """The columns ``hatch run demo`` shows for three sample rows."""
    scalable: bool = False
    """The job may start with more than one subtask in a deployment (stateless, so nothing to
    repartition): its Kubernetes manifest starts it at parallelism 2, the others at 1."""
    rest_port: int = 8081
    """The Compose JobManager's REST port on the host (``127.0.0.1:<port>``), one per job."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"job name {self.name!r}: lower-case letters and digits only")
        module, _, attribute = self.spec.partition(":")
        if not module.startswith(f"{self.module}."):
            raise ValueError(f"job {self.name}: spec {self.spec!r} is not inside {self.module}")
        if not attribute.isidentifier():
            raise ValueError(f"job {self.name}: spec {self.spec!r} must be 'module:NAME'")
        unknown = set(self.sample_columns) - {c.name for c in self.table.columns}
        if unknown:
            raise ValueError(f"job {self.name}: sample columns {sorted(unknown)} not in the table")

    @property
    def module(self) -> str:
        """The job's Python package, run with ``python -m``: ``jupiter_movements``. Named after
        the job, so that the one Dockerfile derives it from its build argument JOB."""
        return f"jupiter_{self.name}"

    @property
    def folder(self) -> str:
        """The job's project folder, relative to the repository root: ``jobs/movements-job``."""
        return f"jobs/{self.name}-job"

    @property
    def distribution(self) -> str:
        """The job's Python distribution and image name: ``jupiter-movements-job``."""
        return f"jupiter-{self.name}-job"

    @property
    def consumer_group(self) -> str:
        """The default Kafka consumer group (``KAFKA_CONSUMER_GROUP`` overrides it)."""
        return f"jupiter-{self.name}"

    @property
    def flink_job_name(self) -> str:
        """The default Flink job name (``FLINK_JOB_NAME`` overrides it)."""
        return f"jupiter-{self.name}"

    @property
    def parallelism(self) -> int:
        """The parallelism a deployment starts the job with (see :attr:`scalable`)."""
        return 2 if self.scalable else 1

    def load(self) -> JobSpec:
        """Import the job's package and return its ``JobSpec``."""
        module, _, attribute = self.spec.partition(":")
        spec: JobSpec = getattr(importlib.import_module(module), attribute)
        return spec


JOBS: tuple[Job, ...] = (
    Job(
        name="base",
        table=SESSIONS_BASE,
        spec="jupiter_base.job:JOB",
        sample_columns=("session_id", "vehicle_id", "started_at", "start_lat", "start_lon"),
        rest_port=8081,
    ),
    Job(
        name="events",
        table=SESSION_EVENTS,
        spec="jupiter_events.job:JOB",
        sample_columns=("session_id", "timestamp", "previous_status", "status", "lat", "lon"),
        rest_port=8082,
    ),
    Job(
        name="movements",
        table=SESSION_MOVEMENTS,
        spec="jupiter_movements.job:JOB",
        sample_columns=("session_id", "timestamp", "status", "lat", "lon"),
        scalable=True,
        rest_port=8083,
    ),
)
"""Every job, in the order tools list them. Read it through :func:`jobs` (tests swap it)."""


def jobs() -> tuple[Job, ...]:
    """Every registered job. A function, not a constant, so that derived places read the
    registry when they run: a test that declares a toy job sees them pick it up."""
    return JOBS


def job_names() -> tuple[str, ...]:
    return tuple(job.name for job in jobs())


def get_job(name: str) -> Job:
    """The entry of job ``name``; raises :class:`UnknownJobError` naming the known jobs."""
    for job in jobs():
        if job.name == name:
            return job
    raise UnknownJobError(f"unknown job {name!r}: must be one of {', '.join(job_names())}")


def check_registry(entries: tuple[Job, ...]) -> None:
    """Raise ``ValueError`` if two entries share a name, module, table or REST port."""
    for what in ("name", "module", "rest_port"):
        values = [getattr(job, what) for job in entries]
        if len(set(values)) != len(values):
            raise ValueError(f"two jobs share a {what}: {values}")
    tables = [job.table.name for job in entries]
    if len(set(tables)) != len(tables):
        raise ValueError(f"two jobs land the same table: {tables}")


check_registry(JOBS)
