from job_fixtures import _connector_jar_present, _no_job_outlives_its_test

__all__ = ["_connector_jar_present", "_no_job_outlives_its_test"]
