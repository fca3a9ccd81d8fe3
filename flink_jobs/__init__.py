"""Where tags are windowed: the PyFlink job from Kafka to Cassandra."""
