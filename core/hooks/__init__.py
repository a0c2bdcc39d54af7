"""Inbound provider webhooks: the durable inbox (``inbox``), applying deliveries to runs
(``apply``) and whether each source's hooks still arrive (``activity``)."""
