"""The escalation desk: business requests a person decides, with the analysis, the precedents and the record."""
