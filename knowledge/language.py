"""Which language a message is in, so that a guess in a language the model does not read is never acted on.

The bundled model reads English. A message in another language still gets a nearest playbook, usually a wrong
one (a bot that mistook Chinese for Hebrew ran a real skill: SAPConversationalAI#118). py3langid (a fork of
langid.py, BSD licence, its model inside the package) names the language in about 0.1 ms. Short and mixed
messages fool it, so a message counts as another language only when it is written mostly in a non-Latin script
or the identifier is confident; Hindi or Spanish words in an English sentence ("app bahut slow hai") stay with
the model, which reads them partly.
"""

from __future__ import annotations

import threading
import unicodedata

ENGLISH = "en"
CONFIDENT = 0.6  # identifier probability above which a Latin-script message is taken as another language
_lock = threading.Lock()
_identifier = None


def language_of(text: str) -> str:
    """An ISO 639-1 code: "en" unless the message is clearly in another language."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return ENGLISH
    latin = sum("LATIN" in unicodedata.name(ch, "") for ch in letters) / len(letters)
    language, probability = _identify(text)
    if latin < 0.5:
        return language if language != ENGLISH else "und"  # a script the model does not read, whatever it is
    if language != ENGLISH and probability >= CONFIDENT:
        return language
    return ENGLISH


def _identify(text: str) -> tuple[str, float]:
    global _identifier
    with _lock:
        if _identifier is None:
            # Loaded on first use (about a second), never at import time.
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        identifier = _identifier
    language, probability = identifier.classify(text)
    return str(language), float(probability)
