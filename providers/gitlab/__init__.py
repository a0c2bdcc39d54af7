"""GitLab CI provider (python-gitlab).

Modules: ``provider`` (the ``GitLabProvider`` class and its settings), ``polling`` (one list
request per project per cycle), ``mapping`` (GitLab statuses and jobs to snapshots and
steps), ``client`` (the python-gitlab client, rate limits, error translation) and
``plugin`` (the entry point).
"""
