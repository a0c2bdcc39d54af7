"""What an operator sees of a running gateway: log setup (``logs``) and Prometheus metrics
(``metrics``, ``exposition``). Shared by the API processes and the worker."""
