"""Where everything is stored: the Cassandra schema (`*.cql`, applied in
file-name order) and `apply`, the one way it is applied, by the local stack,
the tests, the images and the Kubernetes schema job (`python -m cql`)."""
