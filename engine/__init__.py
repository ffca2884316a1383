"""The engine: facts, rules, actions and the event store; turns a match into a decision."""
