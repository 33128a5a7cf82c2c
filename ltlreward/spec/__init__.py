"""The task-spec language: operator table, grammar, AST, parser with located errors, printer, English.

Where things live: every fact about an operator (symbol, arity, precedence, English words, how the monitor
evaluates it) is one row of `ops.py`; the syntax is `grammar.lark`; the nodes are `ast.py`; generic
traversals `walk.py`; cuts to fragments (the end-state spec) `cuts.py`.
"""

from .ast import (
    Atom,
    Binary,
    Call,
    Compare,
    Const,
    Constraint,
    Entity,
    Formula,
    Interval,
    Macro,
    Num,
    Quoted,
    TaskSpec,
    Unary,
)
from .cuts import end_state_spec
from .english import explain_constraint, explain_formula
from .ops import OPS, Op, OpInfo
from .parser import load_spec, parse_formula, parse_spec, validate_spec
from .printer import format_formula, format_spec
from .walk import atoms_of, spec_atoms, subformulas, substitute

__all__ = [
    "OPS", "Atom", "Binary", "Call", "Compare", "Const", "Constraint", "Entity", "Formula", "Interval", "Macro",
    "Num", "Op", "OpInfo", "Quoted", "TaskSpec", "Unary", "atoms_of", "end_state_spec", "explain_constraint",
    "explain_formula", "format_formula", "format_spec", "load_spec", "parse_formula", "parse_spec", "spec_atoms",
    "subformulas", "substitute", "validate_spec",
]
