"""Where data is read: profiles and range aggregates served from Cassandra."""
