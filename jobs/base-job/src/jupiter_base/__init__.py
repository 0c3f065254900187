"""base-job: one immutable ``sessions_base`` header per session."""
