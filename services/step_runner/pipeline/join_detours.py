"""Joins through a table that only connects two others with a relation of their own (`detour_join`).

`FROM customers c JOIN addresses a ON a.customer_id = c.id JOIN orders o ON o.shipping_address_id = a.id`
totals the orders shipped to a customer's addresses, not the customer's orders, although
`orders.customer_id` relates the two directly. The middle table is a detour when the SELECT uses nothing of
it but its two join conditions (and its live-rows condition), and the tables it connects have a relation
(declared or inferred, pipeline/relations.py) that the SELECT does not join them by. Any other use of the
middle table (a column selected, grouped or filtered on, `m.*`, an unqualified column it may own) makes it
part of the question, and nothing is reported.
"""

from __future__ import annotations

from pglast import ast

from services.step_runner.pipeline.relations import Relation
from services.step_runner.pipeline.select_tree import SelectTree, TableRef, live_predicate, selects, walk
from services.step_runner.pipeline.sql_gate import _names


def detours(tree: SelectTree, relations: list[Relation]) -> list[str]:
    """One sentence per detour, naming the tables and the relation to join by instead."""
    related = {frozenset((r.child, r.parent)): r for r in relations}
    out: list[str] = []
    for sel in selects(tree.stmt):
        refs = [r for r in tree.ranges if r.select is sel]
        if len(refs) < 3:
            continue
        edges, joining = _equalities(sel, refs)
        used = _used(sel, refs, joining)
        for m, middle in enumerate(refs):
            ends = {j for edge in edges if m in edge for j in edge if j != m}
            if m in used or len(ends) != 2:
                continue
            a, c = (refs[i] for i in sorted(ends))
            relation = related.get(frozenset((a.table.qualified_name, c.table.qualified_name)))
            if relation is None or a.table is c.table or frozenset(ends) in edges:
                continue
            out.append(
                f"joins {middle.table.name} only to connect {a.table.name} and {c.table.name}, which have "
                f"their own relation ({relation.describe()}): join them directly"
            )
    return out


def _ref_of(node: ast.ColumnRef, refs: list[TableRef]) -> list[int]:
    """The table references a column may belong to: the one its qualifier names, or every one that has
    a column of that name when it has none; all of them for a bare `*`."""
    fields = node.fields or ()
    names = _names(tuple(f for f in fields if not isinstance(f, ast.A_Star)))
    star = bool(fields) and isinstance(fields[-1], ast.A_Star)
    qualifier = names[-1 if star else -2].lower() if len(names) >= (1 if star else 2) else None
    if qualifier is not None:
        return [i for i, r in enumerate(refs) if qualifier in {r.alias.lower(), r.table.name.lower()}]
    if star or not names:
        return list(range(len(refs)))
    column = names[-1].lower()
    return [i for i, r in enumerate(refs) if any(c.name.lower() == column for c in r.table.columns)]


def _equalities(sel: ast.SelectStmt, refs: list[TableRef]) -> tuple[set[frozenset[int]], set[int]]:
    """Pairs of references an `x.a = y.b` of this SELECT connects, and the ids of those column nodes."""
    edges: set[frozenset[int]] = set()
    joining: set[int] = set()
    for node in walk(sel, skip=lambda n: n is not sel and isinstance(n, ast.SelectStmt)):
        if not (
            isinstance(node, ast.A_Expr)
            and _names(node.name) == ["="]
            and isinstance(node.lexpr, ast.ColumnRef)
            and isinstance(node.rexpr, ast.ColumnRef)
        ):
            continue
        left, right = _ref_of(node.lexpr, refs), _ref_of(node.rexpr, refs)
        if len(left) == 1 and len(right) == 1 and left != right:
            edges.add(frozenset((left[0], right[0])))
            joining.update((id(node.lexpr), id(node.rexpr)))
    return edges, joining


def _used(sel: ast.SelectStmt, refs: list[TableRef], joining: set[int]) -> set[int]:
    """The references some column of the statement (outside join equalities and live-rows conditions)
    may belong to, subqueries included."""
    used: set[int] = set()
    for node in walk(sel, skip=lambda n: live_predicate(n) is not None):
        if isinstance(node, ast.ColumnRef) and id(node) not in joining:
            used.update(_ref_of(node, refs))
    return used
