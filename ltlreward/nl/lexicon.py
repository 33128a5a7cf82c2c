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
COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
MANNERS = ("carefully", "gently", "slowly", "quickly", "smoothly", "safely", "steadily", "firmly", "precisely",
           "softly", "neatly")
SEPARATORS = (".", "!", "?", ";")

# size words ranked from largest (0) to smallest (2); entity names use the canonical word
SIZE_RANK = {"largest": 0, "biggest": 0, "huge": 0, "large": 0, "big": 0, "larger": 0, "bigger": 0,
             "tall": 0, "medium": 1, "middle-sized": 1, "mid-sized": 1, "medium-sized": 1,
             "small": 2, "smallest": 2, "tiny": 2, "little": 2, "smaller": 2, "short": 2}
SIZE_CANON = {0: "large", 1: "medium", 2: "small"}

_WORD = re.compile(r"\d+\.\d+|[a-z0-9][a-z0-9'\-]*|[.,;:!?&]")
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
    if re.fullmatch(r"\d+(\.\d+)?", word):
        return "NUMBER"
    if word in MANNERS:
        return "MANNER"
    if is_plural(word):
        return "PLURAL_HEAD"
    return "NOUN"


# ------------------------------------------------------------------------------------ open vocabulary
# Read by ltlreward.nl.normalise before the grammar sees a sentence. Courtesy is dropped without a warning (it
# asks, it does not constrain); every other word the normaliser drops or changes is a warning.
COURTESY_LEADS: tuple[tuple[str, ...], ...] = (
    ("would", "you", "mind"), ("could", "you", "please"), ("can", "you", "please"), ("would", "you", "please"),
    ("will", "you", "please"), ("could", "you"), ("can", "you"), ("would", "you"), ("will", "you"),
    ("i'd", "like", "you", "to"), ("i", "would", "like", "you", "to"), ("i'd", "like", "the", "robot", "to"),
    ("i'd", "like", "it", "to"), ("please",), ("pls",), ("plz",), ("kindly",))
COURTESY_TAILS: tuple[tuple[str, ...], ...] = (
    ("please",), ("pls",), ("plz",), ("thanks",), ("thank", "you"), ("thx",), ("cheers",))
FILLERS: tuple[tuple[str, ...], ...] = (  # dropped at a sentence start, with a warning
    ("ok", "so"), ("okay", "so"), ("alright", "so"), ("ok",), ("okay",), ("alright",), ("so",), ("hey",),
    ("well",), ("basically",))
FILLER_WORDS = frozenset({"just", "simply"})  # dropped anywhere, with a warning
MODALS = frozenset({"could", "can", "would", "will", "may", "should", "must"})  # "Could the left arm …?"
SUBJECT_STARTS = frozenset({"the", "both", "each", "either", "left", "right", "one", "your", "its", "robot"})
BE_WORDS = frozenset({"be", "is", "are", "gets", "get", "been", "being"})  # passive auxiliaries
# verbs the grammar does not have, read as one it has (a warning names the reading)
VERB_SYNONYMS = {"hang": "put", "pop": "put", "stick": "insert", "shift": "move",
                 "tuck": "put", "stash": "put", "plop": "put", "grip": "grab", "clutch": "grab", "snatch": "grab",
                 "yank": "pull", "tug": "pull", "elevate": "lift", "hoist": "lift", "hand-off": "hand",
                 "shove": "push", "poke": "press", "jab": "press", "deliver": "bring", "haul": "carry",
                 "transport": "carry", "ferry": "carry", "retrieve": "fetch", "nestle": "put"}
# nouns of manipulation tasks, for spelling correction (entities.py's kind tables are added to them)
NOUNS = ("bottle", "cup", "mug", "glass", "plate", "bowl", "block", "cube", "brick", "box", "drawer", "cabinet",
         "door", "window", "button", "switch", "lever", "handle", "knob", "faucet", "tap", "lid", "pot", "pan",
         "kettle", "stove", "oven", "microwave", "fridge", "sink", "sponge", "towel", "cloth", "napkin", "spoon",
         "fork", "knife", "ladle", "spatula", "tray", "basket", "bin", "dustbin", "bucket", "shelf", "table", "rack",
         "hook", "peg", "hole", "nut", "bolt", "screw", "hammer", "nail", "book", "laptop", "phone", "remote",
         "mouse", "keyboard", "lamp", "banana", "apple", "orange", "lemon", "bread", "toaster", "ketchup", "can",
         "jar", "puck", "goal", "target", "marker", "pen", "pencil", "stapler", "scissors", "tape", "toy",
         "ball", "shoe", "hat", "bag", "mat", "coaster", "vase", "flower", "plant", "chair", "robot", "gripper",
         "arm", "hand", "object", "item", "thing", "container", "pitcher", "jug", "teapot", "kettle", "carton",
         "milk", "water", "cereal", "soup", "sauce", "butter", "cheese", "cream", "salad", "dressing", "tomato",
         "potato", "carrot", "onion", "egg", "board", "counter", "wall", "floor", "corner", "edge", "center")


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
