"""Operator commands: ``hatch run status`` (lag, rows, dead letters, checkpoints of every job)
and ``hatch run dead-letters`` (list, show, replay). They read the same settings as the jobs
(:func:`jupiter_common.settings.load_shared_settings`) and are not part of the job images."""
