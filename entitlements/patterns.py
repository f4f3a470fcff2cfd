"""The patterns of text questions: refused when they cannot be matched safely, matched in
linear time.

Answers are matched with RE2 (google-re2), whose running time grows linearly with the
answer, so no pattern can hold a web worker however it is written. A pattern is also refused
when it is saved if RE2 cannot run it (backreferences, lookaround), or if it repeats a part
that can match the same text in more than one way, like ``(a|aa)+`` or ``(\\w+\\s?)*``:
backtracking engines (Python's ``re``, browsers, the API clients that check answers with the
question's ``regexPattern``) take exponential time on such a pattern.
"""

import functools
import re
from re import _constants as sre
from re import _parser as sre_parse

import re2
from django.utils.translation import gettext as _

# Characters the overlap of two character classes is decided on: ASCII and Latin-1, some
# letters, digits and spaces of other scripts, and the pattern's own literals.
_SAMPLE = frozenset(map(chr, range(256))) | frozenset("ĀłŒſΩжא٣߀।中\u2003\u3000")
_CATEGORY = {
    sre.CATEGORY_DIGIT: r"\d",
    sre.CATEGORY_NOT_DIGIT: r"\D",
    sre.CATEGORY_SPACE: r"\s",
    sre.CATEGORY_NOT_SPACE: r"\S",
    sre.CATEGORY_WORD: r"\w",
    sre.CATEGORY_NOT_WORD: r"\W",
}
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}


class UnsafePattern(ValueError):
    """A pattern that cannot be matched safely; ``str(error)`` says why, for the admin."""


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern):
    """The RE2 program of ``pattern``; raises UnsafePattern if RE2 cannot run it."""
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise UnsafePattern(str(reason)) from None


def check_pattern(pattern):
    """Raise UnsafePattern unless ``pattern`` compiles and cannot backtrack exponentially."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        raise UnsafePattern(str(exc)) from None
    compile_pattern(pattern)
    _Analysis(pattern, parsed).check()


def fullmatch(pattern, text):
    """Does ``text`` as a whole match ``pattern``? Linear time; UnsafePattern if RE2 cannot
    run the pattern (one saved before patterns were checked)."""
    return compile_pattern(pattern).fullmatch(text) is not None


class _Analysis:
    """Finds a repeated part whose text can be split between its pieces in several ways.

    Inside a repetition, every choice the engine makes (one more turn of an inner ``+`` or
    ``*``, an optional part, one alternative or another) must be decided by the next
    character: the characters that continue the choice may not also start what follows it.
    """

    def __init__(self, pattern, parsed):
        self.parsed = parsed
        flags = parsed.state.flags
        # Scoped flags, (?i:...), count for the whole pattern: it errs towards refusing.
        scoped = re.search(r"\(\?[a-zA-Z]*i", pattern) is not None
        self.ignore_case = bool(flags & sre.SRE_FLAG_IGNORECASE) or scoped
        self.dot_all = bool(flags & sre.SRE_FLAG_DOTALL)
        self.universe = _SAMPLE | frozenset(self._literals(parsed))

    def check(self):
        self._walk(self.parsed)

    # -- what the parts can match -----------------------------------------------------

    def _literals(self, items):
        for op, av in items:
            if op in (sre.LITERAL, sre.NOT_LITERAL):
                yield chr(av)
            elif op == sre.RANGE:
                yield from (chr(av[0]), chr(av[1]))
            elif op == sre.IN:
                yield from self._literals(av)
            elif op == sre.BRANCH:
                for branch in av[1]:
                    yield from self._literals(branch)
            elif op in _REPEATS:
                yield from self._literals(av[2])
            elif op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
                yield from self._literals(av[-1])

    def _chars(self, test):
        if self.ignore_case:
            cases = lambda c: {v for v in (c, c.lower(), c.upper()) if len(v) == 1}  # noqa: E731
            return frozenset(c for c in self.universe if any(map(test, cases(c))))
        return frozenset(c for c in self.universe if test(c))

    def _in_set(self, items, char):
        negate, found = False, False
        for op, av in items:
            if op == sre.NEGATE:
                negate = True
            elif op == sre.LITERAL:
                found = found or char == chr(av)
            elif op == sre.RANGE:
                found = found or av[0] <= ord(char) <= av[1]
            elif op == sre.CATEGORY:
                found = found or re.fullmatch(_CATEGORY.get(av, r"[\s\S]"), char) is not None
            else:
                found = True
        return found != negate

    def _atom(self, op, av):
        if op == sre.LITERAL:
            return self._chars(lambda c: c == chr(av))
        if op == sre.NOT_LITERAL:
            return self._chars(lambda c: c != chr(av))
        if op == sre.ANY:
            return self._chars(lambda c: self.dot_all or c != "\n")
        if op == sre.IN:
            return self._chars(lambda c: self._in_set(av, c))
        return self.universe  # anything else: assume it may start with any character

    def _nullable(self, items):
        return all(self._item_nullable(op, av) for op, av in items)

    def _item_nullable(self, op, av):
        if op in _REPEATS:
            return av[0] == 0 or self._nullable(av[2])
        if op == sre.BRANCH:
            return any(self._nullable(branch) for branch in av[1])
        if op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
            return self._nullable(av[-1])
        return op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT)

    def _first(self, items):
        """The characters the text matched by ``items`` can start with."""
        first = frozenset()
        for op, av in items:
            first |= self._item_first(op, av)
            if not self._item_nullable(op, av):
                break
        return first

    def _item_first(self, op, av):
        if op in _REPEATS:
            return self._first(av[2])
        if op == sre.BRANCH:
            return frozenset().union(*(self._first(branch) for branch in av[1]))
        if op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
            return self._first(av[-1])
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            return frozenset()
        return self._atom(op, av)

    # -- the check ----------------------------------------------------------------------

    def _walk(self, items):
        """Check the body of every repetition of more than one turn, wherever it is."""
        for op, av in items:
            if op in _REPEATS:
                _low, high, body = av
                if high > 1:
                    if self._nullable(body):
                        raise UnsafePattern(
                            _("a repeated part can match empty text, so it can repeat endlessly")
                        )
                    self._sequence(body, after=self._first(body))
                self._walk(body)
            elif op == sre.BRANCH:
                for branch in av[1]:
                    self._walk(branch)
            elif op in (sre.SUBPATTERN, sre.ATOMIC_GROUP, sre.ASSERT, sre.ASSERT_NOT):
                self._walk(av[-1])

    def _sequence(self, items, *, after):
        """Check the choices in ``items``, ``after`` being what can follow the sequence."""
        items = list(items)
        for index, (op, av) in enumerate(items):
            rest = items[index + 1 :]
            follow = self._first(rest) | (after if self._nullable(rest) else frozenset())
            if op in _REPEATS:
                low, high, body = av
                if low != high and self._first(body) & follow:
                    raise UnsafePattern(
                        _("a repeated or optional part can also match what follows it")
                    )
                again = self._first(body) if high > 1 else frozenset()
                self._sequence(body, after=again | follow)
            elif op == sre.BRANCH:
                self._branch(av[1], follow)
            elif op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
                self._sequence(av[-1], after=follow)

    def _branch(self, branches, follow):
        starts, empty = [], 0
        for branch in branches:
            start = self._first(branch)
            if self._nullable(branch):
                start |= follow
                empty += 1
            if empty > 1 or any(start & other for other in starts):
                raise UnsafePattern(
                    _("two alternatives of a repeated part can match the same text")
                )
            starts.append(start)
            self._sequence(branch, after=follow)
