"""GitHub Actions provider (PyGithub)."""
