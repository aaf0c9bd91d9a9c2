"""corenas-eventlog: search events as JSON lines in ``JOB_DIR/events.jsonl``."""
