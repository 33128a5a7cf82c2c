"""Open vocabulary in front of the grammar: the words people write → the words grammar.lark knows, each change
a warning (never silent), each word kept with its span in the original text so errors quote what was written.

    normalise("Pick up teh cup, thanks", keywords)   # → "pick up the cup", warning 'spelling: read "teh" as "the" …'

Per sentence, in this order:
  courtesy    "could you", "please", "kindly", "thanks" … dropped without a warning (they ask, not constrain);
  fillers     "ok so", "just" … dropped with a warning naming them (an unused word is never silent);
  modals      "Could the left arm pick …?" → "the left arm pick …" (a request is an instruction);
  verbs       in a verb slot, an inflection the grammar lacks → its lemma ("slid" → slide, lemminflect), and a
              verb the grammar lacks → a synonym it has (lexicon.VERB_SYNONYMS: "hang" → put), with a warning;
  spelling    a word in no English dictionary (lemminflect's) and not in the lexicon → the closest lexicon word
              within edit distance 1 (2 for words of 8+ letters, symspellpy), with its distance and confidence
              in the warning; with none close, the word is kept and the warning says so;
  superlatives "the heaviest object" → an NLError: no predicate ranks objects by weight.
`passive_to_active` is the parser's second try for a sentence the grammar rejects ("The peg should be
inserted into the hole" → "insert the peg into the hole", "… by the right arm" → "with the right arm").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from .errors import NLError
from .lexicon import (
    BE_WORDS,
    COLOURS,
    COUNTS,
    COURTESY_LEADS,
    COURTESY_TAILS,
    FILLER_WORDS,
    FILLERS,
    MANNERS,
    MODALS,
    NOUNS,
    ORDINALS,
    SEPARATORS,
    SIZES,
    SUBJECT_STARTS,
    VERB_SYNONYMS,
    is_plural,
    singular,
    tokenize,
)


@dataclass(frozen=True)
class Word:
    """One word as the grammar will see it, and the span of the original text it came from."""

    text: str
    lo: int
    hi: int


@dataclass(frozen=True)
class Normalised:
    """A description as the grammar will parse it: its words (with original spans) and the warnings so far."""

    original: str
    words: tuple[Word, ...]
    warnings: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The words joined by spaces: what the grammar parses."""
        return " ".join(w.text for w in self.words)

    def original_pos(self, pos: int) -> int:
        """The offset in the original text of the word at (or after) offset `pos` of `text`."""
        at = 0
        for w in self.words:
            if pos < at + len(w.text) + 1:
                return w.lo
            at += len(w.text) + 1
        return len(self.original)


_VERB_SLOT_BEFORE = frozenset({",", "and", "then", "to", "next", "first", "finally", "please", "also", "should",
                               "must", "arm", "gripper", "hand", "arms", "grippers", "hands", "now", "afterwards",
                               "lastly", "you", "robot", "that", "once", "after", "before", "again"})


def _sentences(words: list[Word]) -> list[list[Word]]:
    """Split at sentence ends (kept on the sentence they end)."""
    out: list[list[Word]] = [[]]
    for w in words:
        out[-1].append(w)
        if w.text in SEPARATORS:
            out.append([])
    return [s for s in out if s]


def _starts_with(ws: list[Word], i: int, phrase: tuple[str, ...]) -> bool:
    """Whether the words from position i spell `phrase`."""
    return tuple(w.text for w in ws[i : i + len(phrase)]) == phrase


def _strip_leads(ws: list[Word], warnings: list[str]) -> list[Word]:
    """Courtesy, fillers and a question's modal at the sentence start (repeated: "ok so could you …")."""
    changed = True
    while changed and ws:
        changed = False
        for phrase in COURTESY_LEADS:
            if _starts_with(ws, 0, phrase):
                ws, changed = ws[len(phrase) :], True
                break
        else:
            for phrase in FILLERS:
                if _starts_with(ws, 0, phrase) and len(ws) > len(phrase):
                    warnings.append(f'ignored "{" ".join(phrase)}" (it asks for nothing)')
                    ws, changed = ws[len(phrase) :], True
                    break
            else:
                if len(ws) > 1 and ws[0].text in MODALS and ws[1].text in SUBJECT_STARTS:
                    ws, changed = ws[1:], True
        while ws and ws[0].text == ",":
            ws = ws[1:]
    return ws


def _strip_tails(ws: list[Word]) -> list[Word]:
    """Courtesy at the sentence end ("…, please?", "… thanks."), before its end mark."""
    end = [w for w in ws[-1:] if w.text in SEPARATORS]
    body = ws[: len(ws) - len(end)]
    changed = True
    while changed:
        changed = False
        for phrase in COURTESY_TAILS:
            n = len(phrase)
            if len(body) > n and tuple(w.text for w in body[-n:]) == phrase:
                body, changed = body[:-n], True
        while body and body[-1].text == ",":
            body, changed = body[:-1], True
    return body + end


@lru_cache(maxsize=1)
def _lemmatiser() -> Any:
    import lemminflect

    return lemminflect


def lemmas(word: str) -> dict[str, tuple[str, ...]]:
    """lemminflect's lemmas of a word by part of speech ({} for a word in no dictionary)."""
    return _lemmatiser().getAllLemmas(word)


def _is_superlative(word: str) -> bool:
    adj = lemmas(word).get("ADJ", ())
    return bool(adj) and adj[0] != word and word in _lemmatiser().getInflection(adj[0], "JJS")


@lru_cache(maxsize=4)
def _speller(keywords: frozenset[str]) -> Any:
    """A SymSpell dictionary of the lexicon: the grammar's keywords, the nouns and their plurals, the word classes."""
    from symspellpy import SymSpell

    sym = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
    nouns = _nouns()
    words = {w for w in keywords if w.isalpha()} | nouns | {n + ("es" if n.endswith(("s", "x", "ch", "sh")) else "s")
                                                            for n in nouns}
    words |= set(COLOURS) | set(SIZES) | set(ORDINALS) | set(COUNTS) | set(MANNERS)
    for w in words:
        sym.create_dictionary_entry(w, 10 if w in keywords else 5)
    return sym


@lru_cache(maxsize=1)
def _nouns() -> frozenset[str]:
    from .entities import BUTTONS, CONTAINERS, PEGS, REGIONS, SURFACES

    return frozenset(NOUNS) | SURFACES | REGIONS | CONTAINERS | PEGS | BUTTONS


@lru_cache(maxsize=4)
def lexicon_words(keywords: frozenset[str]) -> frozenset[str]:
    """Every word the spelling corrector knows (keywords, nouns, word classes)."""
    return frozenset(_speller(keywords).words)


def _known(word: str, keywords: frozenset[str]) -> bool:
    """A keyword, a word class, a number, or a word of the lexicon."""
    if word in keywords or word in SEPARATORS or not word[0].isalpha() or "'" in word:
        return True
    return word in lexicon_words(keywords) or (is_plural(word) and singular(word) in lexicon_words(keywords))


def _spell(w: Word, keywords: frozenset[str], warnings: list[str], noun_slot: bool = False) -> Word:
    """The word, or its correction against the lexicon (with a warning either way when it is unknown); after a
    determiner or an adjective (`noun_slot`) a noun wins a tie with a keyword ("the drawr" → drawer)."""
    from symspellpy import Verbosity

    if _known(w.text, keywords) or lemmas(w.text) or len(w.text) < 3:
        return w
    limit = 2 if len(w.text) >= 8 else 1
    hits = _speller(keywords).lookup(w.text, Verbosity.CLOSEST, max_edit_distance=limit)
    if not hits:
        warnings.append(f'unknown word "{w.text}" (in no dictionary) kept as written')
        return w
    best = max(hits, key=lambda h: (h.count + (10 if noun_slot and h.term in _nouns() else 0), h.term))
    ties = [h.term for h in hits if h.term != best.term]
    conf = (1.0 - best.distance / max(len(w.text), len(best.term))) / len(hits)
    alt = f"; also close: {', '.join(ties)}" if ties else ""
    warnings.append(f'spelling: read "{w.text}" as "{best.term}" (edit distance {best.distance}, '
                    f"confidence {conf:.2f}{alt})")
    return replace(w, text=best.term)


def _verb(w: Word, keywords: frozenset[str], warnings: list[str]) -> Word:
    """A word in a verb slot: an inflection the grammar lacks → its lemma; an unknown verb → its synonym."""
    if w.text in keywords:
        return w
    for lemma in lemmas(w.text).get("VERB", ()):
        if lemma in keywords:
            return replace(w, text=lemma)
        if lemma in VERB_SYNONYMS:
            warnings.append(f'read "{w.text}" as "{VERB_SYNONYMS[lemma]}"')
            return replace(w, text=VERB_SYNONYMS[lemma])
    return w


def _split_units(words: list[Word]) -> list[Word]:
    """"2s" / "5sec" → "2" "s": a number glued to its unit."""
    import re

    out: list[Word] = []
    for w in words:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|sec|secs|seconds|frames|f)", w.text)
        if m:
            k = len(m.group(1))
            out += [Word(m.group(1), w.lo, w.lo + k), Word(m.group(2), w.lo + k, w.hi)]
        else:
            out.append(w)
    return out


def _sentence(ws: list[Word], keywords: frozenset[str], warnings: list[str], text: str) -> list[Word]:
    """One sentence normalised (see the module docstring)."""
    end = [w for w in ws[-1:] if w.text in SEPARATORS]
    ws = _strip_tails(_strip_leads(ws[: len(ws) - len(end)], warnings)) + end
    out: list[Word] = []
    for w in ws:
        if w.text in FILLER_WORDS:
            warnings.append(f'ignored "{w.text}"')
            continue
        if not _known(w.text, keywords) and _is_superlative(w.text):
            raise NLError(f'cannot express "{w.text}": choosing an object by a superlative needs a property the '
                          "predicate library does not measure", text=text, span=(w.lo, w.hi))
        w = _spell(w, keywords, warnings, bool(out) and (out[-1].text in _NP_KEYWORDS or out[-1].text in COLOURS
                                                        or out[-1].text in SIZES))
        if not out or out[-1].text in _VERB_SLOT_BEFORE:
            w = _verb(w, keywords, warnings)
        out.append(w)
    return out


def normalise(text: str, keywords: frozenset[str]) -> Normalised:
    """The description's words in the grammar's vocabulary, with a warning for every change (see the module)."""
    words = _split_units([Word(t, p, p + len(t)) for t, p in tokenize(text)])
    warnings: list[str] = []
    out: list[Word] = []
    for s in _sentences(words):
        out += _sentence(s, keywords, warnings, text)
    return Normalised(text, tuple(out), tuple(dict.fromkeys(warnings)))


def sentences(norm: Normalised) -> list[Normalised]:
    """The description's sentences, each a Normalised of its own words (warnings stay on the whole)."""
    return [replace(norm, words=tuple(s), warnings=()) for s in _sentences(list(norm.words))]


def passive_to_active(norm: Normalised, keywords: frozenset[str]) -> Normalised | None:
    """Each passive sentence "NP [modal] be VERB-ed … [by ARM]" made active; None when there is none."""
    out: list[Word] = []
    changed = False
    for s in _sentences(list(norm.words)):
        active = _active(s, keywords)
        changed |= active is not None
        out += active if active is not None else s
    return replace(norm, words=tuple(out)) if changed else None


def _active(ws: list[Word], keywords: frozenset[str]) -> list[Word] | None:
    """One sentence "NP [modal] be VERB-ed REST" as "VERB NP REST" ("by ARM" → "with ARM"); None if not passive."""
    texts = [w.text for w in ws]
    be = next((i for i, t in enumerate(texts) if t in BE_WORDS), None)
    if be is None or be == 0 or be + 1 >= len(ws):
        return None
    subject = ws[:be]
    while subject and subject[-1].text in MODALS | {"to", "has", "have", "needs", "need", "is"}:
        subject = subject[:-1]
    if not subject or any(w.text in keywords and w.text not in _NP_KEYWORDS for w in subject):
        return None
    part = ws[be + 1]
    verb = next((lem for lem in lemmas(part.text).get("VERB", ()) if lem in keywords or lem in VERB_SYNONYMS), None)
    if verb is None or (part.text == verb and part.text not in ("put", "set", "cut")):
        return None
    verb = verb if verb in keywords else VERB_SYNONYMS[verb]
    rest = ws[be + 2 :]
    for i, w in enumerate(rest):  # "by the right arm" → "with the right arm"
        if w.text == "by" and i + 1 < len(rest) and any(x.text in _ARM_WORDS for x in rest[i + 1 : i + 4]):
            rest = [*rest[:i], replace(w, text="with"), *rest[i + 1 :]]
    return [replace(part, text=verb), *subject, *rest]


_NP_KEYWORDS = frozenset({"the", "a", "an", "this", "that", "its", "their", "your", "left", "right", "top", "bottom",
                          "middle", "both", "all", "each"})
_ARM_WORDS = frozenset({"arm", "arms", "gripper", "grippers", "hand", "hands", "robot"})


__all__ = ["Normalised", "Word", "lemmas", "lexicon_words", "normalise", "passive_to_active", "sentences"]
