"""The environment of one CI job, as GitHub Actions and GitLab CI set it (what the client
derives its Idempotency-Key from)."""

GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/web",
    "GITHUB_RUN_ID": "8812345",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_JOB": "deploy",
    "GITHUB_ACTION": "__run",
}
GITLAB = {
    "GITLAB_CI": "true",
    "CI_SERVER_HOST": "gitlab.example.com",
    "CI_PROJECT_ID": "42",
    "CI_PIPELINE_ID": "99001",
    "CI_JOB_ID": "555",
    "CI_JOB_NAME": "deploy",
}
