"""Word classes and the word-level lexer of the controlled-English grammar (grammar.lark).

Keywords are exactly the quoted words of the grammar; everything else is classified here, so that a keyword
never hides inside a noun and an unknown word is always a noun (the grammar then decides if it fits).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lark import Token
from lark.lexer import Lexer, LexerState

COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "black", "white", "gray", "grey",
           "brown", "cyan", "magenta", "violet")
SIZES = ("large", "big", "medium", "small", "tiny", "little", "largest", "smallest", "biggest", "huge",
         "middle-sized", "mid-sized", "medium-sized", "larger", "smaller", "bigger", "tall", "short")
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "1st": 1, "2nd": 2, "3rd": 3,
            "4th": 4, "5th": 5}
COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5}
MANNERS = ("carefully", "gently", "slowly", "quickly", "smoothly", "safely", "steadily", "firmly", "precisely",
           "softly", "neatly")
SEPARATORS = (".", "!", "?", ";")

# size words ranked from largest (0) to smallest (2); entity names use the canonical word
SIZE_RANK = {"largest": 0, "biggest": 0, "huge": 0, "large": 0, "big": 0, "larger": 0, "bigger": 0,
             "tall": 0, "medium": 1, "middle-sized": 1, "mid-sized": 1, "medium-sized": 1,
             "small": 2, "smallest": 2, "tiny": 2, "little": 2, "smaller": 2, "short": 2}
SIZE_CANON = {0: "large", 1: "medium", 2: "small"}

_WORD = re.compile(r"[a-z0-9][a-z0-9'\-]*|[.,;:!?&]")
_SINGULAR_S = ("ss", "us", "is", "as", "os", "ys")


def is_plural(word: str) -> bool:
    """True for a word that reads as a regular English plural ("blocks", "boxes"; not "glass", "bus")."""
    return len(word) > 2 and word.endswith("s") and not word.endswith(_SINGULAR_S)


def singular(word: str) -> str:
    """The singular of a regular plural noun."""
    for suffix, repl in (("ies", "y"), ("xes", "x"), ("ches", "ch"), ("shes", "sh"), ("sses", "ss")):
        if word.endswith(suffix):
            return word[: -len(suffix)] + repl
    return word[:-1] if word.endswith("s") else word


def tokenize(text: str) -> list[tuple[str, int]]:
    """Words and punctuation of lower-cased `text` with their character offsets."""
    return [(m.group(0), m.start()) for m in _WORD.finditer(text.lower())]


def classify(word: str, keywords: dict[str, str]) -> str:
    """The terminal type of one word given the grammar's keyword → terminal-name map."""
    if word in keywords:
        return keywords[word]
    if word in SEPARATORS:
        return "_SEP"
    if word in COLOURS:
        return "COLOUR"
    if word in SIZES:
        return "SIZE"
    if word in ORDINALS:
        return "ORDINAL"
    if word in COUNTS:
        return "COUNT"
    if re.fullmatch(r"[1-9]", word):
        return "NUMBER"
    if word in MANNERS:
        return "MANNER"
    if is_plural(word):
        return "PLURAL_HEAD"
    return "NOUN"


class WordLexer(Lexer):
    """Lark lexer over whole words: keywords lex as themselves, other words by `classify`."""

    keywords: dict[str, str] = {}

    def __init__(self, lexer_conf) -> None:
        self.keywords = {}
        for t in lexer_conf.terminals:
            if t.pattern.type == "str":
                self.keywords[t.pattern.value] = t.name

    def lex(self, lexer_state: LexerState | str, parser_state=None) -> Iterator[Token]:
        text = getattr(lexer_state, "text", lexer_state)
        text = getattr(text, "text", text)  # lark wraps the input in a LexerState / TextSlice
        for word, pos in tokenize(text):
            yield Token(classify(word, self.keywords), word, start_pos=pos, line=1, column=pos + 1,
                        end_pos=pos + len(word))
