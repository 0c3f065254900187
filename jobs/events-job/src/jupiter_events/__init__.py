"""events-job: one ``session_events`` row per status change of a session."""
