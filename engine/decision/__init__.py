"""From a match to a decision: the pack it rests on (topology, playbooks and rules, checked against each other),
the facts a decision is made on, the forward-chaining rule engine (the only module that touches durable-rules),
where rules come from, rule test files, the trace and its explanation.
"""
