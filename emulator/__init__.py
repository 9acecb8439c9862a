"""Local Lambda sandbox: Runtime, Extensions, Telemetry and Invoke APIs with Lambda's semantics."""
