"""GitLab CI provider (python-gitlab)."""
