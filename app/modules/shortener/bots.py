"""Bot detection with crawlerdetect's pattern lists, in time linear in the user agent.

crawlerdetect joins ~1,500 patterns into one case-insensitive alternation for Python's
backtracking `re`: a crafted 512-character user agent costs it tens of milliseconds, on the
event loop, for every redirect. Here the same lists run on RE2 (automata, no backtracking),
with crawlerdetect's semantics kept exactly: strip, remove the exclusions (leftmost-first,
non-overlapping, like `re.sub`), then report the leftmost-first crawler match.

Three things make RE2 agree with Python `re` and stay fast whatever the input:

- One RE2 program over all patterns can blow up its DFA (a user agent made of pattern
  prefixes visits a new state per byte); RE2 then falls back to its NFA, milliseconds per
  call. The crawler patterns are split into small programs whose DFAs stay small; their
  leftmost-first answers are merged (leftmost start, then list order), which is the answer
  of the one big alternation.
- Matching runs on Latin-1 bytes, one byte per character, so spans are character offsets.
  HTTP header values are Latin-1 already; of other characters, the four that Python's
  IGNORECASE equates with an ASCII letter (U+0130, U+0131, U+017F, U+212A) become that
  letter, Unicode digits a byte that only `\\d` matches, the rest a byte no pattern names.
- RE2 has no look-around, and its `$` is the end of text where Python's also matches before
  a final newline: `$` and a trailing `(?!literal)` are rewritten into a named group that
  consumes what the assertion looked at, cut from the reported match. Any other pattern
  RE2 cannot read is dropped and named in `BotPatterns.dropped` (a test keeps that empty).
"""

from __future__ import annotations

import codecs
import logging
import re
import unicodedata
from collections.abc import Sequence

import re2
from crawlerdetect.providers.crawlers import data as CRAWLERS
from crawlerdetect.providers.exclusions import data as EXCLUSIONS

__all__ = ["BotPatterns", "bot_patterns"]

log = logging.getLogger(__name__)

_DIGIT = "\x81"  # stands for a Unicode digit outside Latin-1: only \d matches it
_OTHER = "\x80"  # stands for any other character outside Latin-1: only `.` matches it
_FOLDS = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}  # Python's IGNORECASE


def _placeholders(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeEncodeError)
    text = error.object[error.start : error.end]
    out = [
        _FOLDS.get(char) or (_DIGIT if unicodedata.category(char) == "Nd" else _OTHER)
        for char in text
    ]
    return "".join(out), error.end


_CODEC_ERRORS = "encurta-bot-placeholders"
codecs.register_error(_CODEC_ERRORS, _placeholders)


class _Unsupported(ValueError):
    pass


_LOOKAHEAD = re.compile(r"\(\?!([A-Za-z0-9 ]+)\)$")


def _translate(pattern: str, tails: list[str]) -> str:
    """crawlerdetect's Python pattern as RE2 (Latin-1) syntax with the same meaning.

    Each rewritten assertion gets a named group; its name is appended to `tails`."""
    lookahead = _LOOKAHEAD.search(pattern)
    suffix = ""
    if lookahead:
        pattern = pattern[: lookahead.start()]
        name = f"tail{len(tails)}"
        tails.append(name)
        suffix = f"(?P<{name}>{_not_followed_by(lookahead.group(1))})"
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 == len(pattern):
                raise _Unsupported("trailing backslash")
            escaped = pattern[i + 1]
            if escaped == "d":
                out.append(f"0-9\\x{ord(_DIGIT):02x}" if in_class else f"[0-9\\x{ord(_DIGIT):02x}]")
            elif escaped.isascii() and not escaped.isalnum():
                out.append("\\" + escaped)
            else:
                raise _Unsupported(f"escape \\{escaped}")
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
            out.append(char)
        elif char == "[":
            in_class = True
            out.append(char)
            if pattern.startswith("^", i + 1):
                raise _Unsupported("negated class")  # would match the placeholders
        elif char == "$":
            name = f"tail{len(tails)}"
            tails.append(name)
            out.append(f"(?P<{name}>\\n?)\\z")
        elif char == "(" and pattern.startswith("(?", i):
            raise _Unsupported("group extension")
        elif not char.isascii():
            raise _Unsupported("non-ASCII character")
        else:
            out.append(char)
        i += 1
    return "".join(out) + suffix


def _not_followed_by(literal: str) -> str:
    """What `(?!literal)` looks at, as a consuming group: the end of text, or a character
    where the literal stops matching."""
    tail = ""
    for char in reversed(literal):
        escaped = re2.escape(char)
        tail = f"\\z|[^{escaped}]" + (f"|{escaped}(?:{tail})" if tail else "")
    return tail


def _options(captures: bool) -> re2.Options:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.case_sensitive = False
    options.never_capture = not captures
    options.log_errors = False
    return options


# The wrapper's bytes-level entry point: its str API re-encodes and converts offsets.
_UNANCHORED = re2._Anchor.UNANCHORED


class _Program:
    """One compiled alternation, matched on bytes with RE2's own entry point (the
    wrapper's str API re-encodes the text and converts offsets on every call)."""

    def __init__(self, patterns: Sequence[str], tails: Sequence[str]) -> None:
        regex = re2.compile("|".join(patterns).encode("latin-1"), _options(bool(tails)))
        self.match = regex._regexp.Match
        index = {
            name.decode() if isinstance(name, bytes) else name: group
            for name, group in regex.groupindex.items()
        }
        self._tails = [index[name] for name in tails]

    def first(self, data: bytes, pos: int = 0) -> tuple[int, int]:
        """(start, end) of the leftmost-first match at or after pos, (-1, -1) if none; the
        end excludes what a rewritten assertion consumed."""
        spans = self.match(_UNANCHORED, data, pos, len(data))
        start, end = spans[0]
        for group in self._tails:
            tail_start, tail_end = spans[group]
            if tail_start >= 0:
                end -= tail_end - tail_start
        return start, end


# Patterns that may repeat without bound get a program of their own: their loops, combined
# with hundreds of partial literals, are what multiplies DFA states.
_UNBOUNDED = re.compile(r"(?<!\\)[*+]|\{\d*,\}")


class BotPatterns:
    """crawlerdetect's decision on RE2. `reason(ua)` is what `CrawlerDetect.getMatches()`
    returns after `isCrawler(ua)`: the matched text, or None for a person's browser."""

    def __init__(
        self,
        crawlers: Sequence[str] = CRAWLERS,
        exclusions: Sequence[str] = EXCLUSIONS,
        chunk: int = 128,
    ) -> None:
        self.dropped: list[tuple[str, str]] = []
        excluded = [p for p in (self._exclusion(p) for p in exclusions) if p is not None]
        # Runs of adjacent exclusions are one match of `(?:...)+`, the same text that
        # successive leftmost-first matches remove: one call per run, not per match.
        self._exclusions = _Program([f"(?:{'|'.join(excluded)})+"], [])
        groups: list[list[tuple[str, list[str]]]] = [[]]
        for original in crawlers:
            tails: list[str] = []
            translated = self._translated(original, tails)
            if translated is None:
                continue
            alone = bool(_UNBOUNDED.search(original))
            if groups[-1] and (alone or len(groups[-1]) >= chunk):
                groups.append([])
            groups[-1].append((translated, tails))
            if alone:
                groups.append([])
        self._crawlers = [self._program(group) for group in groups if group]

    def _translated(self, pattern: str, tails: list[str]) -> str | None:
        try:
            return _translate(pattern, tails)
        except _Unsupported as exc:
            self._drop(pattern, str(exc))
            return None

    def _exclusion(self, pattern: str) -> str | None:
        """An exclusion must consume exactly what Python's would, and never nothing."""
        tails: list[str] = []
        translated = self._translated(pattern, tails)
        if translated is None:
            return None
        if tails:
            self._drop(pattern, "an assertion in an exclusion")
        elif re.fullmatch(pattern, "", re.IGNORECASE) is not None:
            self._drop(pattern, "an exclusion that matches the empty string")
        elif not _compiles(translated):
            self._drop(pattern, "RE2 cannot compile it")
        else:
            return translated
        return None

    def _program(self, group: list[tuple[str, list[str]]]) -> _Program:
        try:
            return self._compile(group)
        except re2.error:  # find the culprit: compile one by one
            return self._compile(
                [(t, tails) for t, tails in group if _compiles(t) or self._drop(t, "RE2")]
            )

    @staticmethod
    def _compile(group: list[tuple[str, list[str]]]) -> _Program:
        patterns: list[str] = []
        names: list[str] = []
        for translated, tails in group:
            for name in tails:  # tail names must be unique within a program
                fresh = f"t{len(names)}"
                translated = translated.replace(f"(?P<{name}>", f"(?P<{fresh}>")
                names.append(fresh)
            patterns.append(translated)
        return _Program(patterns, names)

    def _drop(self, pattern: str, why: str) -> bool:
        log.warning("bot pattern %r dropped: %s", pattern, why)
        self.dropped.append((pattern, why))
        return False

    @property
    def programs(self) -> int:
        return len(self._crawlers) + 1

    def reason(self, user_agent: str) -> str | None:
        text = user_agent.strip()
        if not text:
            return None
        data = text.encode("latin-1", _CODEC_ERRORS)
        # Remove the exclusions, from the bytes that are matched and from the text that
        # is reported alike (one byte per character: the same spans).
        match, size = self._exclusions.match, len(data)
        start, end = match(_UNANCHORED, data, 0, size)[0]
        if start >= 0:
            cuts: list[tuple[int, int]] = []
            while start >= 0:  # the hot loop of a hostile agent: kept bare
                cuts.append((start, end))
                if end <= start or end >= size:  # (no exclusion matches nothing)
                    break
                start, end = match(_UNANCHORED, data, end, size)[0]
            kept = [0, *(i for cut in cuts for i in cut), size]
            pairs = range(0, len(kept), 2)
            data = b"".join([data[kept[i] : kept[i + 1]] for i in pairs])
            text = "".join([text[kept[i] : kept[i + 1]] for i in pairs])
            if not data:
                return None
        best_start, best_end = len(data) + 1, -1
        for program in self._crawlers:
            start, end = program.first(data)
            if 0 <= start < best_start:  # a tie goes to the earlier program: list order
                best_start, best_end = start, end
                if start == 0:
                    break
        if best_end < 0:
            return None
        return text[best_start:best_end]


def _compiles(translated: str) -> bool:
    try:
        re2.compile(translated.encode("latin-1"), _options(True))
    except re2.error:
        return False
    return True


_patterns: BotPatterns | None = None


def bot_patterns() -> BotPatterns:
    """The compiled lists, built once per process (tens of milliseconds: at start-up)."""
    global _patterns
    if _patterns is None:
        _patterns = BotPatterns()
    return _patterns
