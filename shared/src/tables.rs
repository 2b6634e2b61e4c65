//! Table definitions shared by the stores, the local setup and the check against `template.yaml`.
