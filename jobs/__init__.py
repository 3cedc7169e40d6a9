"""Job files (one YAML per experiment) and the entry point that ``ray job submit`` runs."""
