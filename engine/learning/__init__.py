"""What Firstline learns from resolutions: remedy outcomes, the learned-rule lifecycle (proposed, shadow, active,
retired) and the curators' view of both.
"""
