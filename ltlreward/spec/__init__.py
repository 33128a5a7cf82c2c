"""The task-spec language: grammar, AST, parser with located errors, printer and English rendering."""

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
from .english import explain_constraint, explain_formula
from .parser import load_spec, parse_formula, parse_spec, substitute
from .printer import format_formula, format_spec
from .walk import atoms_of, spec_atoms, validate_spec

__all__ = [
    "Atom", "Binary", "Call", "Compare", "Const", "Constraint", "Entity", "Formula", "Interval", "Macro", "Num",
    "Quoted", "TaskSpec", "Unary", "atoms_of", "explain_constraint", "explain_formula", "format_formula",
    "format_spec", "load_spec", "parse_formula", "parse_spec", "spec_atoms", "substitute", "validate_spec",
]
