"""Where a tag enters: POST /user_tags validates it and writes it to Kafka."""
