"""Answer extraction and equivalence: \\boxed{} parsing, exact fast paths, math-verify with our own timeout.

Order of checks in `answers_equivalent` (cheapest first, so majority vote over many samples stays fast):
  1. exact match of the normalised strings ("1,000" -> "1000", "\\dfrac" -> "\\frac", no spaces, ...);
  2. exact rational arithmetic when both sides are plain numbers ("0.5" == "1/2" == "\\frac{1}{2}");
     if both are numbers and differ, the answer is False right away (math-verify would round to 6
     digits and call "0.333333" equal to 1/3; we prefer exact and fast);
  3. math-verify (symbolic, sympy) for everything else, with a deadline (worker process, see below).

math-verify's built-in timeout uses signal.alarm, which only works in the main thread; the app grades
in worker threads, so we switch it off (parsing_timeout=None, timeout_seconds=None) and bound the call
ourselves, by default in a worker subprocess that is killed when it passes the deadline (see
ISOLATION below for why not a thread). A call that hits the deadline returns False and is counted in
`timeout_count()`. This module imports only the standard library (the worker loads it standalone).
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import re
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "extract_boxed",
    "extract_answer",
    "gold_from_gsm8k",
    "normalize_answer",
    "numeric_value",
    "answers_equivalent",
    "answer_key",
    "group_answers",
    "is_correct",
    "timeout_count",
]

# ----------------------------------------------------------------------------------------------
# Extraction
# ----------------------------------------------------------------------------------------------

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """Content of the balanced {...} opening at text[start] and the index after it, else None."""
    if start >= len(text) or text[start] != "{":
        return None
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch in "{}" and i > 0 and text[i - 1] == "\\":
            continue  # "\{" and "\}" are literal braces in LaTeX, not grouping
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None  # unbalanced: e.g. a generation cut off inside the box


def extract_boxed(text: str | None) -> str | None:
    """Content of the last top-level \\boxed{...} (or \\fbox{...}) in `text`, None if there is none.

    Nested braces are fine ("\\boxed{\\frac{1}{2}}" -> "\\frac{1}{2}"); a box inside a box counts as
    part of the outer one. An unclosed box (truncated output) is ignored. "\\boxed 5" (no braces)
    gives "5".
    """
    if not text or not isinstance(text, str):
        return None
    found = None
    pos = 0
    while True:
        m = _BOX_RE.search(text, pos)
        if m is None:
            return found
        i = m.end()
        while i < len(text) and text[i] == " ":
            i += 1
        got = _braced(text, i)
        if got is not None:
            found, pos = got[0].strip(), got[1]
        elif i > m.end() and i < len(text):  # "\boxed 5": the token up to space or "$"
            tok = re.match(r"[^\s$]+", text[i:])
            found, pos = tok.group(0), i + tok.end()
        else:
            pos = m.end()


_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_NUM_UNITS_RE = re.compile(r"^([+-]?\d[\d,]*(?:\.\d+)?)\s+[A-Za-z][A-Za-z ]*$")


def _clean(ans: str) -> str:
    """Light cleanup of an extracted answer: $ signs, markdown bold, trailing period, 1,000 -> 1000."""
    s = ans.strip()
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("**", "").strip()
    s = re.sub(r"^\\\(|\\\)$", "", s).strip()  # \( ... \)
    s = s.rstrip(".").strip()
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    return s


def _strip_units(s: str) -> str:
    """'42 apples' -> '42' (only for the free-text fallbacks; boxed answers are taken as written)."""
    m = _NUM_UNITS_RE.match(s)
    return _clean(m.group(1)) if m else s


_GSM_RE = re.compile(r"####\s*([^\n]+)")
# [ \t]* not \s*: "the final answer is:\n<a new sentence>" must not take the next line as the answer.
_PHRASE_RE = re.compile(r"(?:the\s+(?:final\s+)?answer\s+is|answer\s*:)[ \t]*:?[ \t]*([^\n:\s][^\n]*)", re.IGNORECASE)
_LONG_ANSWER = 40  # a free-text "answer" longer than this is a sentence: keep only its last number
_LAST_NUM_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_answer(text: str | None) -> str | None:
    """The final answer in a model output: last \\boxed{}, else "#### N", else "The answer is X" / "answer: X".

    The free-text fallbacks take the last match and stop at the end of the line (and at a sentence
    end); "$1,000." -> "1000"; "42 apples" -> "42".
    """
    if not text or not isinstance(text, str):
        return None
    boxed = extract_boxed(text)
    if boxed is not None:
        s = _clean(boxed)
        return s or None
    for rx in (_GSM_RE, _PHRASE_RE):
        hits = rx.findall(text)
        if hits:
            raw = hits[-1]
            # a sentence ends at ". " (not at a decimal point like "3.5")
            raw = re.split(r"\.\s", raw, maxsplit=1)[0]
            s = _strip_units(_clean(raw))
            if len(s) > _LONG_ANSWER:
                nums = _LAST_NUM_RE.findall(s)
                s = _clean(nums[-1]) if nums else ""
            if s:
                return s
    return None


def gold_from_gsm8k(answer_field: str) -> str:
    """Gold answer of a GSM8K row: the text after '####', thousands commas removed."""
    if "####" not in answer_field:
        raise ValueError("GSM8K answer field has no '####' marker")
    return answer_field.split("####")[-1].strip().replace(",", "")


# ----------------------------------------------------------------------------------------------
# Normalisation and exact numbers
# ----------------------------------------------------------------------------------------------

_TEXT_WRAP_RE = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{(.*)\}$")


def normalize_answer(ans: str | None) -> str:
    """A canonical string form used for exact comparison (not meant for display)."""
    if ans is None:
        return ""
    s = str(ans).strip()
    inner = extract_boxed(s) if s.startswith(("\\boxed", "\\fbox")) else None
    if inner is not None:
        s = inner
    s = s.replace("\u2212", "-").replace("\u2013", "-")  # unicode minus / en dash
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    for tok in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\ ", "~"):
        s = s.replace(tok, "")
    s = re.sub(r"\^\{?\\circ\}?|°", "", s)  # degrees
    s = re.sub(r"\s+", "", s)
    s = s.rstrip(".")
    m = _TEXT_WRAP_RE.match(s)
    if m and "}" not in m.group(1):
        s = m.group(1)
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    return s


_PLAIN_NUM_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_SLASH_RE = re.compile(r"^([+-]?\d+)/(\d+)$")
_FRAC_RE = re.compile(r"^([+-]?)\\frac(?:\{([+-]?[\d.]+)\}|(\d))(?:\{([+-]?[\d.]+)\}|(\d))$")


def numeric_value(ans: str | None) -> Fraction | None:
    """Exact value of a plain number ("3", "-0.5", "1/2", "\\frac{1}{2}", "\\frac12", "50%"), else None.

    A percent sign is dropped ("50%" -> 50), matching how GSM8K golds and math-verify treat it.
    """
    s = normalize_answer(ans)
    if not s:
        return None
    s = re.sub(r"\\?%$", "", s)
    try:
        if _PLAIN_NUM_RE.match(s):
            exp = re.search(r"[eE]([+-]?\d+)$", s)
            if exp and abs(int(exp.group(1))) > 100:
                return None  # "1e999999999" would build a gigantic integer in the caller's thread
            return Fraction(s)
        m = _SLASH_RE.match(s)
        if m and int(m.group(2)) != 0:
            return Fraction(int(m.group(1)), int(m.group(2)))
        m = _FRAC_RE.match(s)
        if m:
            num = Fraction(m.group(2) or m.group(3))
            den = Fraction(m.group(4) or m.group(5))
            if den != 0:
                return -num / den if m.group(1) == "-" else num / den
    except (ValueError, ZeroDivisionError, OverflowError):
        pass
    return None


# ----------------------------------------------------------------------------------------------
# math-verify with our own deadline
# ----------------------------------------------------------------------------------------------


class _DropMathVerifyTimeoutWarning(logging.Filter):
    # math-verify warns once that its timeout is off; disabling it is deliberate here (see module doc).
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropMathVerifyTimeoutWarning())

_lock = threading.Lock()
_timeouts = 0
_cache: dict[tuple[str, str], bool] = {}
_CACHE_MAX = 20000

# Where math-verify runs. "process": a persistent worker subprocess, killed and replaced when a call
# passes its deadline. This is the default because a thread cannot be stopped: sympy holds the GIL
# inside one long C-level computation (e.g. "2^{10^{10^{10}}}"), so join(timeout) in the caller did
# not return for ~30 s here, and the runaway thread kept slowing every later call.
# "thread": a daemon thread joined with the deadline; lighter, honours the deadline only while the
# work is in Python code. Used as a fallback when the worker process cannot start.
ISOLATION = "process"
_WORKER_START_TIMEOUT = 120.0  # importing sympy + math-verify in a fresh interpreter; not the deadline


def timeout_count() -> int:
    """How many math-verify comparisons hit the deadline since the process started."""
    return _timeouts


def _count_timeout(answer: str, gold: str, timeout: float) -> None:
    global _timeouts
    with _lock:
        _timeouts += 1
    logger.warning("math-verify timed out after %.1fs on %r vs %r; counted as not equal",
                   timeout, answer[:80], gold[:80])


def _mv_wrap(s: str) -> str:
    # math-verify extracts LaTeX from "$...$" or \boxed{}; a bare "x^2+1" may not be found otherwise.
    s = s.strip()
    return s if ("$" in s or "\\boxed" in s) else f"${s}$"


def _mv_equal(answer: str, gold: str) -> bool:
    """math-verify's verdict; no timeout of its own (the caller bounds it)."""
    from math_verify import parse, verify

    g = parse(_mv_wrap(gold), parsing_timeout=None)
    a = parse(_mv_wrap(answer), parsing_timeout=None)
    if not g or not a:
        return False
    return bool(verify(g, a, timeout_seconds=None))


# --- process isolation ---------------------------------------------------------------------------


def _worker_main() -> None:
    """Loop of the worker subprocess: one JSON [answer, gold] per stdin line -> "1"/"0" per line."""
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but the protocol may reach the parent's pipe
    _mv_equal("1", "1")  # warm up (imports, regex tables) before saying ready
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            answer, gold = json.loads(line)
            ok = _mv_equal(answer, gold)
        except Exception:  # noqa: BLE001 - weird input: "not equal", keep serving
            ok = False
        out.write("1\n" if ok else "0\n")
        out.flush()


# The worker loads this file as a standalone module (no package __init__, no tts_viz/ on sys.path,
# where tts_viz/trace.py would shadow the stdlib module of that name); this file imports stdlib only.
_WORKER_CODE = (
    "import importlib.util as u, sys; "
    "s = u.spec_from_file_location('tts_viz_mv_worker', sys.argv[1]); m = u.module_from_spec(s); "
    "s.loader.exec_module(m); m._worker_main()"
)


class _ProcessVerifier:
    """One persistent math-verify subprocess; calls are serialised; a stuck one is killed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def _start(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:  # a reader thread: a portable way to wait on a pipe with a deadline
            try:
                for line in proc.stdout:
                    lines.put(line.strip())
            except (OSError, ValueError):
                pass
            finally:
                proc.stdout.close()  # closed here, by its only reader
                lines.put(None)  # EOF: the worker died or was killed

        threading.Thread(target=pump, name="tts-viz-mv-reader", daemon=True).start()
        try:
            ready = lines.get(timeout=_WORKER_START_TIMEOUT)
        except queue.Empty:
            ready = None
        if ready != "ready":
            self._kill(proc)
            raise RuntimeError("math-verify worker process did not start")
        self._proc, self._lines = proc, lines

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            proc.kill()
            proc.wait(timeout=10)
            proc.stdin.close()
        except Exception:  # noqa: BLE001
            pass

    def call(self, answer: str, gold: str, timeout: float) -> bool | None:
        """The verdict, or None when the deadline passed (the worker is then replaced)."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            proc = self._proc
            try:
                proc.stdin.write(json.dumps([answer, gold]) + "\n")
                proc.stdin.flush()
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                line = "timeout"
            except OSError:  # broken pipe: the worker died; the next call starts a new one
                line = None
            if line in ("1", "0"):
                return line == "1"
            self._kill(proc)
            self._proc = None
            return None if line == "timeout" else False

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                self._kill(self._proc)
                self._proc = None


_worker = _ProcessVerifier()
atexit.register(_worker.close)


# --- thread isolation (fallback) ----------------------------------------------------------------

_warm = False


def _warm_up() -> None:
    """Import math-verify and run one parse outside the deadline: the first call costs ~1 s (sympy,
    antlr, regex tables) and would otherwise count as a timeout on a busy machine."""
    global _warm
    if _warm:
        return
    with _lock:
        if not _warm:
            from math_verify import parse

            parse("$1$", parsing_timeout=None)
            _warm = True


def _thread_call(answer: str, gold: str, timeout: float) -> bool | None:
    _warm_up()
    box: list[bool] = []

    def work() -> None:
        try:
            box.append(_mv_equal(answer, gold))
        except BaseException:  # noqa: BLE001 - weird input must never crash grading
            logger.debug("math-verify failed on %r vs %r", answer, gold, exc_info=True)
            box.append(False)

    t = threading.Thread(target=work, name="tts-viz-math-verify", daemon=True)
    t.start()
    t.join(timeout)
    return box[0] if box else None  # None: still running, we give up on it


def _mv_equal_bounded(answer: str, gold: str, timeout: float) -> bool:
    global ISOLATION
    key = (answer, gold)
    with _lock:
        if key in _cache:
            return _cache[key]
    verdict: bool | None
    if ISOLATION == "process":
        try:
            verdict = _worker.call(answer, gold, timeout)
        except Exception as e:  # noqa: BLE001 - e.g. no subprocesses allowed here
            logger.warning("math-verify worker process unavailable (%s); using a thread instead", e)
            ISOLATION = "thread"
            verdict = _thread_call(answer, gold, timeout)
    else:
        verdict = _thread_call(answer, gold, timeout)
    if verdict is None:
        _count_timeout(answer, gold, timeout)
        return False  # not cached: a later call with more time may succeed
    with _lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = verdict
    return verdict


def answers_equivalent(a: str | None, b: str | None, timeout: float = 2.0) -> bool:
    """True when answer `a` equals reference `b` (b plays the gold role for math-verify).

    None or empty -> False. Never raises. See the module docstring for the order of checks.
    """
    try:
        if a is None or b is None:
            return False
        na, nb = normalize_answer(a), normalize_answer(b)
        if not na or not nb:
            return False
        if na == nb:
            return True
        va, vb = numeric_value(na), numeric_value(nb)
        if va is not None and vb is not None:
            return va == vb
        return _mv_equal_bounded(str(a).strip(), str(b).strip(), timeout)
    except Exception:  # noqa: BLE001
        logger.debug("answers_equivalent failed on %r vs %r", a, b, exc_info=True)
        return False


def answer_key(answer: str | None) -> str:
    """Grouping key for majority vote: numbers become a reduced fraction ("0.5", "1/2", "\\frac{1}{2}"
    -> "1/2"; "3.0" -> "3"), everything else its normalised text. None -> ""."""
    if answer is None:
        return ""
    try:
        v = numeric_value(answer)
        if v is not None:
            return str(v)  # Fraction prints "1/2" or "3"
        return normalize_answer(answer)
    except Exception:  # noqa: BLE001
        return str(answer)


def group_answers(answers: list[str | None], timeout: float = 2.0) -> list[list[int]]:
    """Indices of equivalent answers grouped together, groups in order of first appearance.

    Same key -> same group; then groups are merged when answers_equivalent says their first members
    are equal (skipped when both are plain numbers: different keys already mean different values).
    None or empty answers each stay in a group of their own.
    """
    by_key: dict[str, list[int]] = {}
    order: list[tuple[int, str | None]] = []  # (first index, key or None for a single)
    for i, ans in enumerate(answers):
        key = answer_key(ans) if ans is not None else ""
        if not key:
            order.append((i, None))
        elif key in by_key:
            by_key[key].append(i)
        else:
            by_key[key] = [i]
            order.append((i, key))

    clusters: list[list[int]] = []  # merged groups; clusters[c][0] is the representative
    for first, key in order:
        if key is None:
            clusters.append([first])
            continue
        members = by_key[key]
        rep = answers[first]
        rep_num = numeric_value(rep) is not None
        for cl in clusters:
            other = answers[cl[0]]
            if other is None or not answer_key(other):
                continue
            if rep_num and numeric_value(other) is not None:
                continue  # two different exact numbers
            if answers_equivalent(rep, other, timeout=timeout):
                cl.extend(members)
                break
        else:
            clusters.append(list(members))
    return [sorted(cl) for cl in clusters]


def is_correct(answer: str | None, gold: str | None, timeout: float = 2.0) -> bool | None:
    """None when the gold answer is unknown; False when there is no answer; else equivalence."""
    if gold is None:
        return None
    if answer is None:
        return False
    return answers_equivalent(answer, gold, timeout=timeout)
