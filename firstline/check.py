"""`firstline check`: validate every data file the product reads, without loading the model or opening a store.

The pack comes first (infrastructure, playbooks, rules): a bad file there is refused, with its file, line and
field, before anything else is read. Until then only what reading data files needs is imported (YAML, the
schemas, the topology), so the refusal reaches the shell in well under a second.
"""

from __future__ import annotations

import click

from engine.chat.lexicon import load_lexicon
from engine.chat.voice import load_voice
from engine.decision.pack import load_pack, load_rulebase
from engine.desk.policy import load_decision_policy
from firstline.context import Context


@click.command(short_help="Validate playbooks, rules and other data files.")
@click.pass_obj
def check(obj: Context) -> None:
    """Validate playbooks, rules, infrastructure, replies and the decision policy (no model load)."""
    settings = obj.settings()
    topology, playbooks = load_pack(settings)
    rulebase = load_rulebase(settings, topology, playbooks)
    policy = load_decision_policy(settings.decision_policy_file, playbooks, topology.signals())
    load_voice(settings.replies_file, topology.product)
    # Imported only now, once the pack has passed: these modules bring numpy (the reply reader's and the
    # background's vectors, which checking their files does not use), and a refusal above should not wait for it.
    from engine.chat.understanding import load_reply_examples
    from knowledge.background import load_background

    load_reply_examples(settings.reply_examples_file)
    load_lexicon(settings.reply_words_file)
    background = load_background(settings.background_dir)
    click.echo(f"ok: {len(playbooks)} playbooks, {len(rulebase)} rules (version {rulebase.version}), "
               f"{len(topology.services)} services, {background.size} background lines in "
               f"{len(background.topics)} topics, "
               f"{sum(len(c.guidelines) for c in policy.categories.values())} decision policy guidelines")
