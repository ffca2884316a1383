"""What Firstline learns from resolutions: the learning loop (`loop.LearningLoop`, the one interface the dialogue
reports to), remedy outcomes and the learned-rule lifecycle (`ledger`: proposed, shadow, active, retired) and
the curators' view of both (`curation`).
"""
