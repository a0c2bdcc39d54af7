"""Who may call and how often: API keys, sessions and logins for people, users, the audit log
and rate limits. The HTTP middleware that applies these rules is ``auth``."""
