"""Outgoing webhooks: endpoints, the outbox fan-out, signed at-least-once delivery.

- ``payload``: the spec's body, serialized once (compact, UTF-8, JavaScript-compatible).
- ``signing``: ``X-FlashFusion-Signature`` and the Standard Webhooks headers.
- ``crypto``: endpoint secrets encrypted at rest with ``FLASHFUSION_SECRET_KEY``.
- ``ssrf``: which URLs and addresses may be called, checked at save and at send time.
- ``client``: one POST to a checked, pinned address; no redirects, bounded time and reads.
- ``endpoints``: endpoint management, visibility, enqueueing (sendWebhook, test, replay).
- ``dispatcher``: the worker side: fan-out, leased claims, attempts, backoff, rate limits.
"""
