"""Outgoing webhooks: endpoints, the outbox fan-out, signed at-least-once delivery.

- ``payload``: the spec's body, serialized once (compact, UTF-8, JavaScript-compatible).
- ``signing``: ``X-FlashFusion-Signature`` and the Standard Webhooks headers.
- ``crypto``: endpoint secrets encrypted at rest with ``FLASHFUSION_SECRET_KEY``.
- ``ssrf``: which URLs and addresses may be called, checked at save and at send time.
- ``client``: one POST to a checked, pinned address; no redirects, bounded time and reads.
- ``outbox``: the event types, the one writer of events and the one fan-out into deliveries.
- ``limits``: each endpoint's rate limit (a GCRA bucket per endpoint).
- ``management``: endpoint management, visibility, enqueueing (sendWebhook, test, replay).
- ``views``: endpoints and deliveries as the API, CLI and dashboard show them.
- ``dispatcher``: the worker side: fan-out, leased claims, attempts, backoff, rate limits.
"""
