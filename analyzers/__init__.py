"""SQL-backed detectors that turn stored telemetry into findings with evidence."""
