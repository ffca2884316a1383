"""Rules as data: YAML files validated against a schema, compiled to durable-rules' JSON form."""
