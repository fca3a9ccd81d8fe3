"""The contracts the product's parts share, each in one place: the user tag
and its Kafka record (tag.py), the time grammar (timestamps.py), the cube's
coordinates (cube.py), the limits (limits.py), the shared settings
(settings.py), how an API is served (server.py, service.py), problem
documents, bearer auth and header limits."""
