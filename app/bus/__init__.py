"""Plumbing, no business rules: the Bus protocol, envelopes, the outbox table.

Relays, the inbox and the transports (in-process with pyee, Kafka with aiokafka) build on
these. A module declares what it publishes and consumes and never re-implements delivery.
"""
