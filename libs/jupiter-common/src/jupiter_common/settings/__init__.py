"""Settings from environment variables.

Names and defaults follow the single-process PyFlink service Jupiter replaces
(``KAFKA_BOOTSTRAP=kafka:9092``, ``CLICKHOUSE_HOST=clickhouse`` ...), so a container gets sensible
values with nothing set.
Each job passes its own name, which sets its default consumer group and Flink job name.

Settings are read once, in the job's driver process, and handed to the Flink functions as a
frozen value: the Python workers never read the environment themselves.

Secrets (``CLICKHOUSE_PASSWORD``, ``KAFKA_SASL_PASSWORD``) can also be given as files, the
``*_FILE`` convention of container secrets: ``CLICKHOUSE_PASSWORD_FILE=/run/secrets/...`` reads
the password from that file, so no secret needs to be an environment variable at all. The driver
removes the secret variables from its own environment before it starts Flink
(:func:`drop_secret_variables`): Flink's Python runner logs the whole environment of its Python
workers, which it inherits from the JVM, which inherits it from the driver.

TLS to ClickHouse is given as PEM files (``CLICKHOUSE_CA_CERT``, ``CLICKHOUSE_CLIENT_CERT``,
``CLICKHOUSE_CLIENT_KEY``): paths, not contents. They are checked here, at start-up, and read again
by every client, in the driver and in the TaskManagers' Python workers, so each file must be at
the same path on every Flink process.
"""

from jupiter_common.settings.loading import load_settings, load_shared_settings
from jupiter_common.settings.model import (
    JOB_NAMES,
    NO_JOB,
    SECRET_FIELDS,
    LogLevel,
    Settings,
    StartingOffsets,
)
from jupiter_common.settings.secret_files import (
    SECRET_FILE_SUFFIX,
    SECRET_VARIABLES,
    drop_secret_variables,
    secret_file_variable_names,
)

__all__ = [
    "JOB_NAMES",
    "NO_JOB",
    "SECRET_FIELDS",
    "SECRET_FILE_SUFFIX",
    "SECRET_VARIABLES",
    "LogLevel",
    "Settings",
    "StartingOffsets",
    "drop_secret_variables",
    "load_settings",
    "load_shared_settings",
    "secret_file_variable_names",
]
