"""The conversation: the assistant that answers one message (match, facts, rules, actions, reply), the dialogue that
carries a conversation through its stages, the reader of the user's replies and the voice the replies are written
in.
"""
