"""movements-job: one ``session_movements`` row per GPS ping."""
